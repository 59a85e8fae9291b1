// pytest-fib compile-check stub: used ONLY when this machine's CUDA toolkit lacks the real cublas_v2.h
// (added with -idirafter, so a real header always wins). torch's ATen/cuda headers name these
// library types in declarations; declaring them opaquely lets a torch-binding solution be
// compile-checked on a machine without the full toolkit. A solution that really calls the
// library fails to compile against this stub, and pytest-fib reports that as "needs the
// library's headers" (a skip), never as the solution's compile error.
#pragma once
#define PYTEST_FIB_CUDA_STUB 1
// What the real header pulls in (cublas_api.h / cusparse.h): solutions lean on these.
#include <cuComplex.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <driver_types.h>
#include <library_types.h>
typedef struct cublasContext* cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
