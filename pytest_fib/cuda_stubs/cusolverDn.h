// pytest-fib compile-check stub: used ONLY when this machine's CUDA toolkit lacks the real cusolverDn.h
// (a system include searched after the real toolkit's, so a real header always wins). torch's
// ATen/cuda headers name these library types in declarations; declaring them opaquely lets a
// torch-binding solution be compile-checked on a machine without the full toolkit. A solution that
// really calls the library fails to compile against this stub, and pytest-fib reports that as
// "needs the library's headers" (a skip), never as the solution's compile error.
#pragma once
#define PYTEST_FIB_CUDA_STUB 1
#include <cusolver_common.h>
typedef struct cusolverDnContext* cusolverDnHandle_t;
