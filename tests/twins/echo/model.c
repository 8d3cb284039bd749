/* echo - test twin: y = k u + b (u a continuous Real input), v = s (an Integer discrete input),
 * w = h (a Real input the study holds piecewise constant). Outputs follow the inputs instantly. */
#include "fmio_runtime.h"
#include "model_vars.h"

static int initialize(FmioInstance *m) { (void)m; return 0; }
static int step(FmioInstance *m, double h) { (void)m; (void)h; return 0; }
static int outputs(FmioInstance *m) {
    R(y) = R(k) * R(u) + R(b);
    R(v) = (double)I(s);
    R(w) = R(h);
    return 0;
}
const FmioModelDef MODEL = {0, 0.05, 0, initialize, NULL, step, outputs, NULL, NULL, NULL};
