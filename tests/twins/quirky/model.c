/* quirky - a test-only twin: y' = k (target - y), y(0) = x0, whose instance life cycle misbehaves the way FMUs
 * exported by real tools were seen to (selected by the `quirk` parameter), and which can print to stdout and
 * stderr like tools' assert messages and banners. */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include "fmio_runtime.h"
#include "model_vars.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    int inits;        /* initializations of this instance */
    double last_y;    /* where the last run ended */
    double k, target; /* parameters as first seen */
} Kept;

static double global_last_y;
static int global_runs;
static int global_instances; /* instances this copy of the library has initialized */

/* Keep this library loaded after its last instance is freed, as C++ libraries with unique symbols are kept:
 * its globals then outlive every instance. */
static void pin_library(void) {
    Dl_info info;
    if (dladdr((void *)&pin_library, &info) && info.dli_fname) dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
}

static void release(FmioInstance *m) {
    free(m->persist);
    m->persist = NULL;
}

static int initialize(FmioInstance *m) {
    Kept *kept = (Kept *)m->persist;
    if (!kept) {
        kept = (Kept *)calloc(1, sizeof(Kept));
        if (!kept) return 1;
        m->persist = kept;
        global_instances++;
    }
    kept->inits++;
    if (B(chatter)) {
        printf("quirky: initialization %d of this instance\n", kept->inits);
        fprintf(stderr, "quirky: warning on stderr\n");
    }
    m->x[0] = R(lag_x0);
    switch (I(quirk)) {
    case 1: if (kept->inits > 1) m->x[0] = kept->last_y; break;
    case 2:
        if (kept->inits == 1) { kept->k = R(lag_k); kept->target = R(lag_target); }
        R(lag_k) = kept->k;
        R(lag_target) = kept->target;
        break;
    case 3:
        pin_library();
        if (global_runs++ > 0) m->x[0] = global_last_y;
        break;
    case 4: if (kept->inits > 1) { volatile int *null_pointer = NULL; *null_pointer = 1; } break;
    case 6: { /* state kept by the process itself (here its environment), as a shared runtime or a file would */
        const char *last = getenv("QUIRKY_LAST_Y");
        if (last) m->x[0] = atof(last);
        break;
    }
    case 7: if (kept->inits > 3) m->x[0] = kept->last_y; break; /* resets well twice, then keeps state */
    case 8: /* resets well, but a second instance of the loaded library crashes (seen on a Dymola FMU) */
        if (global_instances > 1) { volatile int *null_pointer = NULL; *null_pointer = 1; }
        break;
    case 5:
        if (R(lag_x0) > R(lag_target)) { /* an assert that reports on stdout only, as OpenModelica's do */
            printf("assert | error | lag.x0 = %g must not exceed lag.target = %g\n", R(lag_x0), R(lag_target));
            return 1;
        }
        break;
    default: break;
    }
    return 0;
}

static int derivatives(FmioInstance *m, double t, const double *x, double *dx) {
    (void)t;
    dx[0] = R(lag_k) * (R(lag_target) - x[0]);
    return 0;
}

static int outputs(FmioInstance *m) {
    Kept *kept = (Kept *)m->persist;
    R(y) = m->x[0];
    if (kept) kept->last_y = m->x[0];
    global_last_y = m->x[0];
    if (I(quirk) == 6) {
        char text[64];
        snprintf(text, sizeof text, "%.17g", m->x[0]);
        setenv("QUIRKY_LAST_Y", text, 1);
    }
    if (B(chatter) && m->time > 0.5 && m->time < 0.52) printf("quirky: {\"not\": \"json\"} at t=%g\n", m->time);
    return 0;
}

const FmioModelDef MODEL = {1, 0.01, 0, initialize, derivatives, NULL, outputs, NULL, NULL, release};
