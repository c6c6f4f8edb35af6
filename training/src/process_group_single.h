#pragma once
// The process group of one process: what world() is without MPI.

#include "xgrad/training/distributed.h"

namespace xgrad::distributed {

ProcessGroup& single_process();

}  // namespace xgrad::distributed
