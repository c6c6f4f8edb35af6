#pragma once
// Everything in xgrad's framework layer: tensors, autograd, operations, gradcheck.

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/blas.h"
#include "xgrad/framework/dropout.h"
#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/gradcheck.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/loss.h"
#include "xgrad/framework/matmul.h"
#include "xgrad/framework/random.h"
#include "xgrad/framework/reduce.h"
#include "xgrad/framework/shape.h"
#include "xgrad/framework/softmax.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/framework/threading.h"
