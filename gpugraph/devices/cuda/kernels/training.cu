// Optimizer updates of the Apply*/ResourceApply* ops: one pass over each parameter.
//
// The array-module bodies in gpugraph/ops/training_ops.py take 10-17 CuPy launches per
// variable (each a pass over memory, ~15 us of launch cost on the H100 we measured); these take
// one.  Scalars (lr, momentum, beta1_power, ...) are read from device memory, as TF's GPU
// kernels read them, so an update never waits for the host.  Formulas and their order follow
// training_ops.cc's CPU functors and gpugraph/devices/cpu/loops.py; gpugraph/devices/cuda/rawmodule.py compiles this
// file with --fmad=false so a*b+c rounds twice there as well.
//
// Each kernel comes in float and double (SUFFIX _float / _double) and uses a grid-stride loop.

#define GRID_STRIDE(n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

#define DEFINE_UPDATES(T, SUFFIX, SQRT)                                                        \
extern "C" __global__ void apply_gradient_descent_##SUFFIX(                                   \
        T* var, const T* g, const T* lr, long long n) {                                        \
    const T lr_ = *lr;                                                                         \
    GRID_STRIDE(n) { var[i] -= g[i] * lr_; }                                                   \
}                                                                                              \
                                                                                               \
extern "C" __global__ void apply_momentum_##SUFFIX(                                           \
        T* var, T* accum, const T* g, const T* lr, const T* momentum, long long n,              \
        int nesterov) {                                                                        \
    const T lr_ = *lr, mom = *momentum;                                                        \
    GRID_STRIDE(n) {                                                                           \
        const T a = accum[i] * mom + g[i];                                                     \
        accum[i] = a;                                                                          \
        var[i] -= nesterov ? g[i] * lr_ + a * mom * lr_ : a * lr_;                             \
    }                                                                                          \
}                                                                                              \
                                                                                               \
extern "C" __global__ void apply_adam_##SUFFIX(                                               \
        T* var, T* m, T* v, const T* g, const T* beta1_power, const T* beta2_power,             \
        const T* lr, const T* beta1, const T* beta2, const T* epsilon, long long n,             \
        int nesterov) {                                                                        \
    const T one = 1, b1 = *beta1, eps = *epsilon;                                              \
    const T one_minus_beta1 = one - b1, one_minus_beta2 = one - *beta2;                        \
    const T alpha = *lr * SQRT(one - *beta2_power) / (one - *beta1_power);                     \
    GRID_STRIDE(n) {                                                                           \
        const T gi = g[i];                                                                     \
        const T mi = m[i] + (gi - m[i]) * one_minus_beta1;                                     \
        const T vi = v[i] + (gi * gi - v[i]) * one_minus_beta2;                                \
        m[i] = mi;                                                                             \
        v[i] = vi;                                                                             \
        const T step = nesterov ? gi * one_minus_beta1 + b1 * mi : mi;                         \
        var[i] -= (step * alpha) / (SQRT(vi) + eps);                                           \
    }                                                                                          \
}

DEFINE_UPDATES(float, float, sqrtf)
DEFINE_UPDATES(double, double, sqrt)
