#pragma once
// Everything in xgrad's layers: modules, and the layers users build models from.

#include "xgrad/framework.h"
#include "xgrad/layers/attention.h"
#include "xgrad/layers/batch_norm.h"
#include "xgrad/layers/convolution.h"
#include "xgrad/layers/dropout.h"
#include "xgrad/layers/embedding.h"
#include "xgrad/layers/layer_norm.h"
#include "xgrad/layers/linear.h"
#include "xgrad/layers/module.h"
#include "xgrad/layers/positional_encoding.h"
#include "xgrad/layers/positional_encoding_2d.h"
#include "xgrad/layers/rnn.h"
#include "xgrad/layers/transformer.h"
