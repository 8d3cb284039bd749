/* faulty - a test-only twin: y' = ((x-1)^2 - y) / 0.2, z = y + 0.1 (n-4)^2, with injectable failures
 * (segfault, abort, exit, hang, NaN output, step error, init error) firing at t >= fault_time. */
#include "fmio_runtime.h"
#include "model_vars.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static int initialize(FmioInstance *m) {
    if (I(fault) == 7) {
        fmio_error(m, "injected failure in initialization");
        return 1;
    }
    m->x[0] = 0.0;
    return 0;
}

static int derivatives(FmioInstance *m, double t, const double *x, double *dx) {
    double target = (R(x) - 1.0) * (R(x) - 1.0);
    (void)t;
    dx[0] = (target - x[0]) / 0.2;
    return 0;
}

static void fire(FmioInstance *m) {
    volatile int *null_pointer = NULL;
    switch (I(fault)) {
    case 1: *null_pointer = 42; break;
    case 2: abort();
    case 3: exit(3);
    case 4: for (;;) { pause(); }
    default: break;
    }
}

static int step(FmioInstance *m, double h) {
    if (m->time + h >= R(fault_time)) {
        fire(m);
        if (I(fault) == 6) {
            fmio_error(m, "injected step failure at t=%g", m->time);
            return 1;
        }
    }
    return fmio_rk4_step(m, h);
}

static int outputs(FmioInstance *m) {
    double y = m->x[0];
    if (I(fault) == 5 && m->time >= R(fault_time)) y = NAN;
    R(y) = y;
    R(z) = y + 0.1 * (I(n) - 4) * (I(n) - 4);
    return 0;
}

const FmioModelDef MODEL = {1, 0.01, 0, initialize, derivatives, step, outputs, NULL, NULL};
