/* fmio_runtime.h - the fmi_optimizer sample-twin runtime (FMI-version independent core).
 *
 * Each sample twin supplies only its physics through a ModelDef (model.c); this runtime
 * holds the variable store, the life-cycle state machine, the fixed-step co-simulation
 * driver and the model-exchange state access. fmio_fmi2.c / fmio_fmi3.c map the FMI 2.0
 * / 3.0 C APIs onto it. The variable tables (model_vars.c / model_vars.h) are generated
 * from modelDescription.xml by fmus/build.py, so the XML is the single source of truth.
 */
#ifndef FMIO_RUNTIME_H
#define FMIO_RUNTIME_H

#include <stddef.h>

#define FMIO_MAX_STATES 16

typedef enum { FMIO_REAL = 0, FMIO_INTEGER = 1, FMIO_BOOLEAN = 2, FMIO_STRING = 3 } FmioKind;

typedef enum {
    FMIO_PARAMETER = 0, FMIO_CALCULATED = 1, FMIO_INPUT = 2,
    FMIO_OUTPUT = 3, FMIO_LOCAL = 4, FMIO_INDEPENDENT = 5
} FmioCausality;

typedef enum {
    FMIO_CONSTANT = 0, FMIO_FIXED = 1, FMIO_TUNABLE = 2, FMIO_DISCRETE = 3, FMIO_CONTINUOUS = 4
} FmioVariability;

typedef enum {
    FMIO_INSTANTIATED = 0, FMIO_INIT_MODE = 1, FMIO_RUNNING = 2, FMIO_TERMINATED = 3, FMIO_FAILED = 4
} FmioPhase;

typedef enum { FMIO_OK = 0, FMIO_WARNING = 1, FMIO_DISCARD = 2, FMIO_ERROR = 3, FMIO_FATAL = 4 } FmioStatus;

/* One model variable: its value reference and where it lives in the typed stores. */
typedef struct {
    unsigned int vr;
    unsigned char kind;
    unsigned char causality;
    unsigned char variability;
    int index;
    const char *name;
} FmioVar;

typedef struct FmioInstance FmioInstance;

/* Logger installed by the FMI-version layer: status is an FmioStatus. */
typedef void (*FmioLogFn)(FmioInstance *inst, int status, const char *category, const char *message);

struct FmioInstance {
    char *name;
    FmioPhase phase;
    int is_model_exchange;
    int logging_on;
    double time;
    double start_time;
    double *r;
    int *i;
    int *b;
    char **s;
    double x[FMIO_MAX_STATES];
    int dirty;                   /* outputs must be recomputed before the next get */
    void *data;                  /* model-private memory, MODEL.data_size bytes, zeroed on reset */
    void *persist;               /* model-managed memory kept across resets (e.g. loaded data files) */
    FmioLogFn log;
    void *env;                   /* FMI-layer environment (callbacks) */
    char *resources;             /* local path of the FMU's resources/ folder with a trailing '/', or "" */
};

/* What a model file supplies. Every callback returns 0 on success, non-zero on failure
 * (after logging why with fmio_error). */
typedef struct {
    int n_states;                                    /* continuous states (RK4 / model exchange) */
    double fixed_step;                               /* internal co-simulation step, seconds */
    size_t data_size;                                /* bytes of model-private memory */
    int (*initialize)(FmioInstance *m);              /* at exit of initialization mode */
    int (*derivatives)(FmioInstance *m, double t, const double *x, double *dx); /* may be NULL */
    int (*step)(FmioInstance *m, double h);          /* own CS step; NULL -> RK4 on derivatives */
    int (*outputs)(FmioInstance *m);                 /* outputs from states/inputs at m->time */
    double (*next_time_event)(FmioInstance *m, double t); /* may be NULL; return > t or a huge value */
    int (*completed_step)(FmioInstance *m);          /* may be NULL: after each accepted CS/ME step */
    void (*release)(FmioInstance *m);                /* may be NULL: free m->persist */
} FmioModelDef;

extern const FmioModelDef MODEL;

/* Generated from modelDescription.xml (model_vars.c). */
extern const FmioVar FMIO_VARS[];
extern const int FMIO_N_VARS;
extern const int FMIO_N_REAL, FMIO_N_INTEGER, FMIO_N_BOOLEAN, FMIO_N_STRING;
extern const double FMIO_REAL_START[];
extern const int FMIO_INTEGER_START[];
extern const int FMIO_BOOLEAN_START[];
extern const char *const FMIO_STRING_START[];
extern const char *const FMIO_TOKEN;

/* Core services used by the FMI layers. */
FmioInstance *fmio_new(const char *name, const char *token, int model_exchange, int logging_on,
                       FmioLogFn log, void *env);
/* Remember the resources location (a file:// URI or a plain path). */
int fmio_set_resources(FmioInstance *m, const char *location);
void fmio_free(FmioInstance *m);
int fmio_reset(FmioInstance *m);
int fmio_enter_init(FmioInstance *m);
int fmio_exit_init(FmioInstance *m);
int fmio_do_step(FmioInstance *m, double t, double h);
int fmio_update(FmioInstance *m);
const FmioVar *fmio_lookup(FmioInstance *m, unsigned int vr, FmioKind kind);
int fmio_can_set(FmioInstance *m, const FmioVar *v);
int fmio_set_string(FmioInstance *m, const FmioVar *v, const char *value);
int fmio_derivatives(FmioInstance *m, double *dx);
int fmio_completed_step(FmioInstance *m);
double fmio_next_event(FmioInstance *m);
/* One classical RK4 step of MODEL.derivatives on m->x from m->time (for custom MODEL.step). */
int fmio_rk4_step(FmioInstance *m, double h);

/* Logging helpers for model files. */
void fmio_error(FmioInstance *m, const char *fmt, ...);
void fmio_info(FmioInstance *m, const char *fmt, ...);

/* Access to the typed stores by generated index: R(name) etc. need `m` in scope. */
#define R(name) (m->r[R_##name])
#define I(name) (m->i[I_##name])
#define B(name) (m->b[B_##name])
#define DATA(type) ((type *)m->data)

#endif
