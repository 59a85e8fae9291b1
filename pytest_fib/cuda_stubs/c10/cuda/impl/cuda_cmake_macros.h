// pytest-fib compile-check stub: a CPU build of torch ships c10/cuda headers but not this generated
// one. Its content in CUDA builds of torch is the single definition below.
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
