// Fits y = 2x - 1 with the installed library and gradient-checks the model: exits non-zero
// if either fails.
#include <xgrad/framework.h>

#include <cstdio>

int main() {
  using namespace xgrad;
  Tensor<float> x = Tensor<float>::from({0, 1, 2, 3}, {4, 1});
  Tensor<float> y = Tensor<float>::from({-1, 1, 3, 5}, {4, 1});
  Tensor<float> w = Tensor<float>::zeros({1, 1}, true);
  Tensor<float> b = Tensor<float>::zeros({1}, true);
  float loss_value = 0;
  for (int step = 0; step < 500; ++step) {
    Tensor<float> loss = mse_loss(matmul(x, w) + b, y);
    loss.backward();
    loss_value = loss.item();
    NoGradGuard no_grad;
    w.mutable_value() -= 0.1f * w.grad();
    b.mutable_value() -= 0.1f * b.grad();
    w.zero_grad();
    b.zero_grad();
  }
  const GradcheckResult check = gradcheck(
      [](const std::vector<Tensor<double>>& v) { return mean(tanh(matmul(v[0], v[1]))); },
      {Tensor<double>::from({0.5, -1.0}, {1, 2}, true), Tensor<double>::from({0.3, 0.7}, {2, 1}, true)});
  std::printf("loss %.6f, w %.4f, b %.4f, %s\n", loss_value, w.value()(0, 0), b.value()(0), check.report.c_str());
  return loss_value < 1e-6f && check.passed ? 0 : 1;
}
