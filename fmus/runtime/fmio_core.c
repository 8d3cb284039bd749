/* fmio_core.c - variable store, life cycle and fixed-step driver of the sample-twin runtime. */
#include "fmio_runtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vlog(FmioInstance *m, int status, const char *category, const char *fmt, va_list ap) {
    char buf[1024];
    if (!m || !m->log) return;
    if (status == FMIO_OK && !m->logging_on) return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    m->log(m, status, category, buf);
}

void fmio_error(FmioInstance *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(m, FMIO_ERROR, "logStatusError", fmt, ap);
    va_end(ap);
}

void fmio_info(FmioInstance *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(m, FMIO_OK, "logEvents", fmt, ap);
    va_end(ap);
}

static char *dup_string(const char *s) {
    size_t n = strlen(s ? s : "") + 1;
    char *d = (char *)malloc(n);
    if (d) memcpy(d, s ? s : "", n);
    return d;
}

static void load_start_values(FmioInstance *m) {
    int k;
    for (k = 0; k < FMIO_N_REAL; k++) m->r[k] = FMIO_REAL_START[k];
    for (k = 0; k < FMIO_N_INTEGER; k++) m->i[k] = FMIO_INTEGER_START[k];
    for (k = 0; k < FMIO_N_BOOLEAN; k++) m->b[k] = FMIO_BOOLEAN_START[k];
    for (k = 0; k < FMIO_N_STRING; k++) {
        free(m->s[k]);
        m->s[k] = dup_string(FMIO_STRING_START[k]);
    }
    memset(m->x, 0, sizeof m->x);
    if (m->data) memset(m->data, 0, MODEL.data_size);
    m->time = 0.0;
    m->start_time = 0.0;
    m->dirty = 1;
}

FmioInstance *fmio_new(const char *name, const char *token, int model_exchange, int logging_on,
                       FmioLogFn log, void *env) {
    FmioInstance *m = (FmioInstance *)calloc(1, sizeof(FmioInstance));
    if (!m) return NULL;
    m->log = log;
    m->env = env;
    m->logging_on = logging_on;
    m->is_model_exchange = model_exchange;
    m->name = dup_string(name);
    if (!token || strcmp(token, FMIO_TOKEN) != 0) {
        fmio_error(m, "Wrong GUID / instantiation token '%s', expected '%s'.", token ? token : "", FMIO_TOKEN);
        fmio_free(m);
        return NULL;
    }
    if (MODEL.n_states > FMIO_MAX_STATES) {
        fmio_error(m, "Model has %d states, the runtime supports %d.", MODEL.n_states, FMIO_MAX_STATES);
        fmio_free(m);
        return NULL;
    }
    m->r = (double *)calloc((size_t)FMIO_N_REAL + 1, sizeof(double));
    m->i = (int *)calloc((size_t)FMIO_N_INTEGER + 1, sizeof(int));
    m->b = (int *)calloc((size_t)FMIO_N_BOOLEAN + 1, sizeof(int));
    m->s = (char **)calloc((size_t)FMIO_N_STRING + 1, sizeof(char *));
    m->data = MODEL.data_size ? calloc(1, MODEL.data_size) : NULL;
    if (!m->r || !m->i || !m->b || !m->s || (MODEL.data_size && !m->data)) {
        fmio_error(m, "Out of memory.");
        fmio_free(m);
        return NULL;
    }
    load_start_values(m);
    m->phase = FMIO_INSTANTIATED;
    return m;
}

void fmio_free(FmioInstance *m) {
    int k;
    if (!m) return;
    if (MODEL.release && m->persist) MODEL.release(m);
    if (m->s)
        for (k = 0; k < FMIO_N_STRING; k++) free(m->s[k]);
    free(m->s);
    free(m->r);
    free(m->i);
    free(m->b);
    free(m->data);
    free(m->name);
    free(m->resources);
    free(m);
}

int fmio_reset(FmioInstance *m) {
    load_start_values(m);
    m->phase = FMIO_INSTANTIATED;
    return FMIO_OK;
}

int fmio_enter_init(FmioInstance *m) {
    if (m->phase != FMIO_INSTANTIATED) {
        fmio_error(m, "enterInitializationMode called in phase %d.", (int)m->phase);
        return FMIO_ERROR;
    }
    m->time = m->start_time;
    m->phase = FMIO_INIT_MODE;
    return FMIO_OK;
}

int fmio_exit_init(FmioInstance *m) {
    if (m->phase != FMIO_INIT_MODE) {
        fmio_error(m, "exitInitializationMode called outside initialization mode.");
        return FMIO_ERROR;
    }
    if (MODEL.initialize && MODEL.initialize(m) != 0) {
        m->phase = FMIO_FAILED;
        return FMIO_ERROR;
    }
    m->phase = FMIO_RUNNING;
    m->dirty = 1;
    return fmio_update(m);
}

/* Recompute outputs when inputs/states/time changed since the last evaluation. */
int fmio_update(FmioInstance *m) {
    if (!m->dirty || m->phase != FMIO_RUNNING) return FMIO_OK;
    if (MODEL.outputs && MODEL.outputs(m) != 0) {
        m->phase = FMIO_FAILED;
        return FMIO_ERROR;
    }
    m->dirty = 0;
    return FMIO_OK;
}

static int finite_states(FmioInstance *m, const double *x) {
    int k;
    for (k = 0; k < MODEL.n_states; k++) {
        if (!isfinite(x[k])) {
            fmio_error(m, "State %d became non-finite (%g) at t = %g.", k, x[k], m->time);
            return 0;
        }
    }
    return 1;
}

/* Classical fourth-order Runge-Kutta step of the model's ODE. */
int fmio_rk4_step(FmioInstance *m, double h) {
    double k1[FMIO_MAX_STATES], k2[FMIO_MAX_STATES], k3[FMIO_MAX_STATES], k4[FMIO_MAX_STATES];
    double xt[FMIO_MAX_STATES];
    const int n = MODEL.n_states;
    const double t = m->time;
    int k;
    if (MODEL.derivatives(m, t, m->x, k1)) return 1;
    for (k = 0; k < n; k++) xt[k] = m->x[k] + 0.5 * h * k1[k];
    if (MODEL.derivatives(m, t + 0.5 * h, xt, k2)) return 1;
    for (k = 0; k < n; k++) xt[k] = m->x[k] + 0.5 * h * k2[k];
    if (MODEL.derivatives(m, t + 0.5 * h, xt, k3)) return 1;
    for (k = 0; k < n; k++) xt[k] = m->x[k] + h * k3[k];
    if (MODEL.derivatives(m, t + h, xt, k4)) return 1;
    for (k = 0; k < n; k++) m->x[k] += h / 6.0 * (k1[k] + 2.0 * k2[k] + 2.0 * k3[k] + k4[k]);
    return finite_states(m, m->x) ? 0 : 1;
}

int fmio_do_step(FmioInstance *m, double t, double h) {
    const double t_end = t + h;
    const double eps = 1e-9 * (fabs(t_end) > 1.0 ? fabs(t_end) : 1.0);
    if (m->phase != FMIO_RUNNING) {
        fmio_error(m, "doStep called in phase %d (expected after exitInitializationMode).", (int)m->phase);
        return FMIO_ERROR;
    }
    if (h < 0.0 || fabs(t - m->time) > eps) {
        fmio_error(m, "doStep(t=%g, h=%g) does not continue from t=%g.", t, h, m->time);
        return FMIO_ERROR;
    }
    while (m->time < t_end - eps) {
        double hh = MODEL.fixed_step;
        int rc;
        if (MODEL.next_time_event) {
            double te = MODEL.next_time_event(m, m->time);
            if (te > m->time + eps && te < m->time + hh) hh = te - m->time;
        }
        if (m->time + hh > t_end - eps) hh = t_end - m->time;
        rc = MODEL.step ? MODEL.step(m, hh) : fmio_rk4_step(m, hh);
        if (rc != 0) {
            m->phase = FMIO_FAILED;
            return FMIO_ERROR;
        }
        m->time += hh;
        if (fmio_completed_step(m) != FMIO_OK) {
            m->phase = FMIO_FAILED;
            return FMIO_ERROR;
        }
    }
    m->time = t_end;
    m->dirty = 1;
    return fmio_update(m);
}

int fmio_derivatives(FmioInstance *m, double *dx) {
    if (!MODEL.derivatives) {
        fmio_error(m, "This model has no continuous states for model exchange.");
        return FMIO_ERROR;
    }
    if (!finite_states(m, m->x) || MODEL.derivatives(m, m->time, m->x, dx) != 0) return FMIO_ERROR;
    return FMIO_OK;
}

int fmio_completed_step(FmioInstance *m) {
    if (MODEL.completed_step && MODEL.completed_step(m) != 0) return FMIO_ERROR;
    return FMIO_OK;
}

double fmio_next_event(FmioInstance *m) {
    return MODEL.next_time_event ? MODEL.next_time_event(m, m->time) : HUGE_VAL;
}

const FmioVar *fmio_lookup(FmioInstance *m, unsigned int vr, FmioKind kind) {
    int k;
    for (k = 0; k < FMIO_N_VARS; k++) {
        if (FMIO_VARS[k].vr == vr) {
            if (FMIO_VARS[k].kind != (unsigned char)kind) {
                fmio_error(m, "Variable '%s' (vr %u) accessed with the wrong type.", FMIO_VARS[k].name, vr);
                return NULL;
            }
            return &FMIO_VARS[k];
        }
    }
    fmio_error(m, "Unknown value reference %u.", vr);
    return NULL;
}

/* Setting rules: inputs always; tunable parameters always; fixed parameters before
 * initialization ends; anything computed by the model never. */
int fmio_can_set(FmioInstance *m, const FmioVar *v) {
    if (v->causality == FMIO_INPUT) return 1;
    if (v->causality == FMIO_PARAMETER && v->variability == FMIO_TUNABLE) return 1;
    if (v->causality == FMIO_PARAMETER && v->variability == FMIO_FIXED &&
        (m->phase == FMIO_INSTANTIATED || m->phase == FMIO_INIT_MODE))
        return 1;
    fmio_error(m, "Variable '%s' cannot be set in phase %d.", v->name, (int)m->phase);
    return 0;
}

int fmio_set_string(FmioInstance *m, const FmioVar *v, const char *value) {
    char *d = dup_string(value);
    if (!d) {
        fmio_error(m, "Out of memory.");
        return FMIO_ERROR;
    }
    free(m->s[v->index]);
    m->s[v->index] = d;
    return FMIO_OK;
}

/* Turn "file:///C:/x/resources/" or "file:/x/resources" or "/x/resources" into a local path with '/'. */
int fmio_set_resources(FmioInstance *m, const char *location) {
    const char *p = location ? location : "";
    size_t n;
    char *d;
    if (strncmp(p, "file://", 7) == 0) {
        p += 7;
        if (strncmp(p, "localhost/", 10) == 0) p += 9;
    } else if (strncmp(p, "file:", 5) == 0) {
        p += 5;
    }
#ifdef _WIN32
    if (p[0] == '/' && p[1] && p[2] == ':') p++;
#endif
    n = strlen(p);
    d = (char *)malloc(n + 2);
    if (!d) return FMIO_ERROR;
    memcpy(d, p, n + 1);
    /* decode %20 and friends */
    {
        size_t i = 0, j = 0;
        while (d[i]) {
            if (d[i] == '%' && d[i + 1] && d[i + 2]) {
                char hex[3] = {d[i + 1], d[i + 2], 0};
                d[j++] = (char)strtol(hex, NULL, 16);
                i += 3;
            } else {
                d[j++] = d[i++];
            }
        }
        d[j] = 0;
        n = j;
    }
    if (n > 0 && d[n - 1] != '/' && d[n - 1] != '\\') {
        d[n] = '/';
        d[n + 1] = 0;
    }
    free(m->resources);
    m->resources = d;
    return FMIO_OK;
}
