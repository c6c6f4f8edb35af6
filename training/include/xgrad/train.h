#pragma once
// The training API: xgrad's layers, and the trainer that trains any module built from them
// (checkpoints, resume, limits, progress, CSV log).

#include "xgrad/layers.h"
#include "xgrad/training/checkpoint.h"
#include "xgrad/training/csv_log.h"
#include "xgrad/training/distributed.h"
#include "xgrad/training/progress_bar.h"
#include "xgrad/training/trainer.h"
