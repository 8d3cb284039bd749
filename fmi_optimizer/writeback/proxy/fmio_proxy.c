/* fmio_proxy - a one-to-one proxy FMU runtime written by fmi_optimizer's write-back.
 *
 * The written FMU carries the original FMU unchanged, unzipped under resources/fmio_proxy/inner/, and
 * this library as its binary. Every FMI call is forwarded to the original ("inner") FMU, with the
 * importer's own callbacks and instance environment, and a valid resource location for the inner FMU.
 * The only thing the proxy adds: the optimized values listed in resources/fmio_proxy/proxy.cfg are set
 * on the inner FMU at the point where FMUs honour them:
 *
 *   FMI 1.0 CS   before the inner fmiInitializeSlave
 *   FMI 2.0      right after the inner fmi2SetupExperiment returns (or at fmi2EnterInitializationMode
 *                when an importer skips fmi2SetupExperiment)
 *   FMI 3.0      before the inner fmi3EnterInitializationMode
 *
 * and the values the importer itself set since instantiation (or reset) are replayed after them, so
 * the importer's values win, also on FMUs that overwrite values set before fmi2SetupExperiment.
 * After a reset the values apply again. See docs/writeback.md.
 *
 * proxy.cfg is a line format (fields separated by one space, text fields percent-encoded):
 *   fmio-proxy 1
 *   fmi <1|2|3>
 *   binary <path of the inner shared library, relative to resources/fmio_proxy/>
 *   token <inner GUID / instantiation token>
 *   identifier <inner model identifier (FMI 1.0 function prefix)>
 *   value <type> <value reference> <literal>      (type: the FMI type name, e.g. Real, Float64, Int32)
 *
 * POSIX only (dlopen). Built by fmi_optimizer (setup.py or on first use, see fmi_optimizer/writeback/proxy_build.py).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fmi1Functions.h"
#include "fmi2Functions.h"
#include "fmi3Functions.h"

#ifndef FMIO_PROXY_SOURCE_ID
#define FMIO_PROXY_SOURCE_ID "unknown"
#endif
/* lets fmi_optimizer tell whether a built library matches this source */
__attribute__((used, visibility("default"))) const char fmio_proxy_source_id[] =
    "FMIO_PROXY_SOURCE_ID=" FMIO_PROXY_SOURCE_ID;

#define MSG_LEN 4096

/* ---------------------------------------------------------------- configuration */

typedef struct {
    char type[16];
    unsigned int vr;
    union {
        double f64;
        float f32;
        int64_t i64;
        uint64_t u64;
        int boolean;
    } v;
    char *text; /* String values (decoded) */
} Baked;

typedef struct {
    int fmi;
    char *binary;     /* absolute path of the inner library */
    char *inner_dir;  /* absolute path of the unzipped inner FMU */
    char *token;
    char *identifier;
    Baked *values;
    size_t n_values;
} Config;

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* percent-decode in place */
static void pdecode(char *s) {
    char *out = s;
    while (*s) {
        if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *out++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 3;
        } else {
            *out++ = *s++;
        }
    }
    *out = 0;
}

/* percent-encode a path for a file:// URI */
static char *pencode_path(const char *path) {
    size_t n = strlen(path);
    char *out = (char *)malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            strchr("/-._~", *s)) {
            *o++ = (char)*s;
        } else {
            o += sprintf(o, "%%%02X", *s);
        }
    }
    *o = 0;
    return out;
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *out = (char *)malloc(na + nb + 2);
    if (!out) return NULL;
    memcpy(out, a, na);
    size_t k = na;
    if (k == 0 || out[k - 1] != '/') out[k++] = '/';
    memcpy(out + k, b, nb + 1);
    return out;
}

/* the local path of a file: URI (file:///p, file://localhost/p, file:/p) or of a plain path; no trailing '/' */
static char *uri_to_path(const char *uri) {
    const char *p = uri;
    if (strncmp(p, "file://", 7) == 0) {
        p += 7;
        if (strncmp(p, "localhost/", 10) == 0) p += 9;
    } else if (strncmp(p, "file:", 5) == 0) {
        p += 5;
    }
    char *path = strdup(p);
    if (!path) return NULL;
    if (p != uri) pdecode(path);
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') path[--n] = 0;
    return path;
}

static void free_config(Config *c) {
    free(c->binary);
    free(c->inner_dir);
    free(c->token);
    free(c->identifier);
    for (size_t i = 0; i < c->n_values; i++) free(c->values[i].text);
    free(c->values);
    memset(c, 0, sizeof *c);
}

static int parse_value(Baked *b, const char *type, const char *vr, char *literal) {
    char *end;
    snprintf(b->type, sizeof b->type, "%s", type);
    b->vr = (unsigned int)strtoul(vr, &end, 10);
    if (*end) return -1;
    errno = 0;
    if (!strcmp(type, "Real") || !strcmp(type, "Float64")) {
        b->v.f64 = strtod(literal, &end);
    } else if (!strcmp(type, "Float32")) {
        b->v.f32 = strtof(literal, &end);
    } else if (!strcmp(type, "Boolean")) {
        b->v.boolean = !strcmp(literal, "1") || !strcmp(literal, "true");
        end = literal + strlen(literal);
    } else if (!strcmp(type, "String")) {
        pdecode(literal);
        b->text = strdup(literal);
        end = literal + strlen(literal);
    } else if (type[0] == 'U') {
        b->v.u64 = strtoull(literal, &end, 10);
    } else {
        b->v.i64 = strtoll(literal, &end, 10);
    }
    return (*end || errno) ? -1 : 0;
}

/* read <resources>/fmio_proxy/proxy.cfg; on failure a message in err */
static int read_config(const char *resources, Config *c, char *err) {
    char *base = join(resources, "fmio_proxy"), *path = base ? join(base, "proxy.cfg") : NULL;
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[MSG_LEN * 4];
    int ok = 0, header = 0;
    memset(c, 0, sizeof *c);
    if (!f) {
        snprintf(err, MSG_LEN, "fmio_proxy: cannot open %s (%s)", path ? path : "proxy.cfg", strerror(errno));
        free(base);
        free(path);
        return -1;
    }
    c->inner_dir = join(base, "inner");
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *save = NULL, *key = strtok_r(line, " ", &save);
        char *a = strtok_r(NULL, " ", &save), *b = strtok_r(NULL, " ", &save), *d = strtok_r(NULL, " ", &save);
        if (!key) continue;
        if (!strcmp(key, "fmio-proxy")) {
            header = a && !strcmp(a, "1");
        } else if (!strcmp(key, "fmi") && a) {
            c->fmi = atoi(a);
        } else if (!strcmp(key, "binary") && a) {
            pdecode(a);
            c->binary = join(base, a);
        } else if (!strcmp(key, "token")) {
            if (a) pdecode(a);
            c->token = strdup(a ? a : "");
        } else if (!strcmp(key, "identifier") && a) {
            pdecode(a);
            c->identifier = strdup(a);
        } else if (!strcmp(key, "value") && a && b) {
            Baked *grown = (Baked *)realloc(c->values, (c->n_values + 1) * sizeof(Baked));
            if (!grown) break;
            c->values = grown;
            memset(&c->values[c->n_values], 0, sizeof(Baked));
            if (parse_value(&c->values[c->n_values], a, b, d ? d : (char *)"") != 0) {
                snprintf(err, MSG_LEN, "fmio_proxy: %s: bad value line for %s %s", path, a, b);
                goto done;
            }
            c->n_values++;
        }
    }
    ok = header && c->fmi >= 1 && c->fmi <= 3 && c->binary && c->token && c->identifier && c->inner_dir;
    if (!ok) snprintf(err, MSG_LEN, "fmio_proxy: %s is incomplete or not a version 1 proxy configuration", path);
done:
    fclose(f);
    free(base);
    free(path);
    if (!ok) free_config(c);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- recorded set calls */

typedef struct Rec {
    int kind;              /* index into the setter table of the FMI version */
    size_t nvr, nvalues;
    unsigned int *vrs;
    void *values;          /* copies; strings and binaries deep-copied */
    size_t *sizes;         /* FMI 3.0 Binary */
    struct Rec *next;
} Rec;

enum { K_REAL, K_INTEGER, K_BOOLEAN, K_STRING, K_F32, K_F64, K_I8, K_U8, K_I16, K_U16, K_I32, K_U32, K_I64,
       K_U64, K_BIN };

/* ---------------------------------------------------------------- the instance */

#define FMI2_FUNCS(X) X(fmi2SetDebugLogging) X(fmi2Instantiate) X(fmi2FreeInstance) X(fmi2SetupExperiment) \
    X(fmi2EnterInitializationMode) X(fmi2ExitInitializationMode) X(fmi2Terminate) X(fmi2Reset) X(fmi2GetReal) \
    X(fmi2GetInteger) X(fmi2GetBoolean) X(fmi2GetString) X(fmi2SetReal) X(fmi2SetInteger) X(fmi2SetBoolean) \
    X(fmi2SetString) X(fmi2GetFMUstate) X(fmi2SetFMUstate) X(fmi2FreeFMUstate) X(fmi2SerializedFMUstateSize) \
    X(fmi2SerializeFMUstate) X(fmi2DeSerializeFMUstate) X(fmi2GetDirectionalDerivative) X(fmi2EnterEventMode) \
    X(fmi2NewDiscreteStates) X(fmi2EnterContinuousTimeMode) X(fmi2CompletedIntegratorStep) X(fmi2SetTime) \
    X(fmi2SetContinuousStates) X(fmi2GetDerivatives) X(fmi2GetEventIndicators) X(fmi2GetContinuousStates) \
    X(fmi2GetNominalsOfContinuousStates) X(fmi2SetRealInputDerivatives) X(fmi2GetRealOutputDerivatives) \
    X(fmi2DoStep) X(fmi2CancelStep) X(fmi2GetStatus) X(fmi2GetRealStatus) X(fmi2GetIntegerStatus) \
    X(fmi2GetBooleanStatus) X(fmi2GetStringStatus)

#define FMI3_FUNCS(X) X(fmi3SetDebugLogging) X(fmi3InstantiateModelExchange) X(fmi3InstantiateCoSimulation) \
    X(fmi3InstantiateScheduledExecution) X(fmi3FreeInstance) X(fmi3EnterInitializationMode) \
    X(fmi3ExitInitializationMode) X(fmi3EnterEventMode) X(fmi3Terminate) X(fmi3Reset) X(fmi3GetFloat32) \
    X(fmi3GetFloat64) X(fmi3GetInt8) X(fmi3GetUInt8) X(fmi3GetInt16) X(fmi3GetUInt16) X(fmi3GetInt32) \
    X(fmi3GetUInt32) X(fmi3GetInt64) X(fmi3GetUInt64) X(fmi3GetBoolean) X(fmi3GetString) X(fmi3GetBinary) \
    X(fmi3GetClock) X(fmi3SetFloat32) X(fmi3SetFloat64) X(fmi3SetInt8) X(fmi3SetUInt8) X(fmi3SetInt16) \
    X(fmi3SetUInt16) X(fmi3SetInt32) X(fmi3SetUInt32) X(fmi3SetInt64) X(fmi3SetUInt64) X(fmi3SetBoolean) \
    X(fmi3SetString) X(fmi3SetBinary) X(fmi3SetClock) X(fmi3GetNumberOfVariableDependencies) \
    X(fmi3GetVariableDependencies) X(fmi3GetFMUState) X(fmi3SetFMUState) X(fmi3FreeFMUState) \
    X(fmi3SerializedFMUStateSize) X(fmi3SerializeFMUState) X(fmi3DeserializeFMUState) \
    X(fmi3GetDirectionalDerivative) X(fmi3GetAdjointDerivative) X(fmi3EnterConfigurationMode) \
    X(fmi3ExitConfigurationMode) X(fmi3GetIntervalDecimal) X(fmi3GetIntervalFraction) X(fmi3GetShiftDecimal) \
    X(fmi3GetShiftFraction) X(fmi3SetIntervalDecimal) X(fmi3SetIntervalFraction) X(fmi3SetShiftDecimal) \
    X(fmi3SetShiftFraction) X(fmi3EvaluateDiscreteStates) X(fmi3UpdateDiscreteStates) \
    X(fmi3EnterContinuousTimeMode) X(fmi3CompletedIntegratorStep) X(fmi3SetTime) X(fmi3SetContinuousStates) \
    X(fmi3GetContinuousStateDerivatives) X(fmi3GetEventIndicators) X(fmi3GetContinuousStates) \
    X(fmi3GetNominalsOfContinuousStates) X(fmi3GetNumberOfEventIndicators) X(fmi3GetNumberOfContinuousStates) \
    X(fmi3EnterStepMode) X(fmi3GetOutputDerivatives) X(fmi3DoStep) X(fmi3ActivateModelPartition)

#define FMI1_FUNCS(X) X(SetDebugLogging, fmi1SetDebugLoggingTYPE) X(SetReal, fmi1SetRealTYPE) \
    X(SetInteger, fmi1SetIntegerTYPE) X(SetBoolean, fmi1SetBooleanTYPE) X(SetString, fmi1SetStringTYPE) \
    X(GetReal, fmi1GetRealTYPE) X(GetInteger, fmi1GetIntegerTYPE) X(GetBoolean, fmi1GetBooleanTYPE) \
    X(GetString, fmi1GetStringTYPE) X(InstantiateSlave, fmi1InstantiateSlaveTYPE) \
    X(InitializeSlave, fmi1InitializeSlaveTYPE) X(TerminateSlave, fmi1TerminateSlaveTYPE) \
    X(ResetSlave, fmi1ResetSlaveTYPE) X(FreeSlaveInstance, fmi1FreeSlaveInstanceTYPE) \
    X(SetRealInputDerivatives, fmi1SetRealInputDerivativesTYPE) \
    X(GetRealOutputDerivatives, fmi1GetRealOutputDerivativesTYPE) X(CancelStep, fmi1CancelStepTYPE) \
    X(DoStep, fmi1DoStepTYPE) X(GetStatus, fmi1GetStatusTYPE) X(GetRealStatus, fmi1GetRealStatusTYPE) \
    X(GetIntegerStatus, fmi1GetIntegerStatusTYPE) X(GetBooleanStatus, fmi1GetBooleanStatusTYPE) \
    X(GetStringStatus, fmi1GetStringStatusTYPE)

#define DECL(name) name##TYPE *name;
#define DECL1(name, type) type *name;

typedef struct {
    Config cfg;
    void *lib;
    void *inner;
    char *name;
    int applied;     /* baked values are in effect since instantiation / the last reset */
    Rec *head, *tail;
    /* FMI 2.0 */
    const fmi2CallbackFunctions *cb2;
    /* FMI 3.0 */
    fmi3InstanceEnvironment env3;
    fmi3LogMessageCallback log3;
    /* FMI 1.0 */
    fmi1CallbackFunctions cb1;
    struct { FMI2_FUNCS(DECL) } f2;
    struct { FMI3_FUNCS(DECL) } f3;
    struct { FMI1_FUNCS(DECL1) } f1;
} Proxy;

static void report(Proxy *p, const char *fmt, ...) {
    char msg[MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->cfg.fmi == 2 && p->cb2 && p->cb2->logger) {
        p->cb2->logger(p->cb2->componentEnvironment, p->name ? p->name : "fmio_proxy", fmi2Error, "logStatusError",
                       "%s", msg);
    } else if (p->cfg.fmi == 3 && p->log3) {
        p->log3(p->env3, fmi3Error, "logStatusError", msg);
    } else if (p->cfg.fmi == 1 && p->cb1.logger) {
        p->cb1.logger(p, p->name ? p->name : "fmio_proxy", fmi1Error, "logStatusError", "%s", msg);
    } else {
        fprintf(stderr, "%s\n", msg);
    }
}

/* An FMU state of the proxy: the original's state plus whether the baked values were in effect when it was
 * taken, so that restoring a state from before they applied makes them apply again at the next initialization
 * (and restoring one from after does not apply them twice). Serialized as one flag byte before the original's. */
typedef struct {
    void *inner;
    int applied;
} ProxyState;

/* STATE_FUNCS(version table, export macro, instance type, state type, byte type, status type, warning, error,
 *             get, set, free, size, serialize, deserialize, missing-function reporter) */
#define STATE_FUNCS(V, EXPORT, Inst, State, Byte, Status, WARN, ERR, GET, SET, FREE, SIZE, SER, DESER, MISSING)  \
    EXPORT Status GET(Inst c, State *state) {                                                                 \
        Proxy *p = (Proxy *)c;                                                                                \
        if (!p || !state) return ERR;                                                                         \
        if (!p->V.GET) return MISSING(p, #GET);                                                               \
        ProxyState *ps = (ProxyState *)*state; /* non-NULL: overwrite that state */                           \
        State inner = ps ? (State)ps->inner : NULL;                                                           \
        Status s = p->V.GET(p->inner, &inner);                                                                \
        if (s > WARN) return s;                                                                               \
        if (!ps && !(ps = (ProxyState *)calloc(1, sizeof *ps))) {                                             \
            report(p, "fmio_proxy: out of memory for an FMU state");                                          \
            return ERR;                                                                                       \
        }                                                                                                     \
        ps->inner = inner;                                                                                    \
        ps->applied = p->applied;                                                                             \
        *state = (State)ps;                                                                                   \
        return s;                                                                                             \
    }                                                                                                         \
    EXPORT Status SET(Inst c, State state) {                                                                  \
        Proxy *p = (Proxy *)c;                                                                                \
        ProxyState *ps = (ProxyState *)state;                                                                 \
        if (!p || !ps) return ERR;                                                                            \
        if (!p->V.SET) return MISSING(p, #SET);                                                               \
        Status s = p->V.SET(p->inner, (State)ps->inner);                                                      \
        if (s <= WARN) p->applied = ps->applied;                                                              \
        return s;                                                                                             \
    }                                                                                                         \
    EXPORT Status FREE(Inst c, State *state) {                                                                \
        Proxy *p = (Proxy *)c;                                                                                \
        if (!p || !state) return ERR;                                                                         \
        ProxyState *ps = (ProxyState *)*state;                                                                \
        if (!ps) return (Status)0;                                                                            \
        if (!p->V.FREE) return MISSING(p, #FREE);                                                             \
        State inner = (State)ps->inner;                                                                       \
        Status s = p->V.FREE(p->inner, &inner);                                                               \
        free(ps);                                                                                             \
        *state = NULL;                                                                                        \
        return s;                                                                                             \
    }                                                                                                         \
    EXPORT Status SIZE(Inst c, State state, size_t *size) {                                                   \
        Proxy *p = (Proxy *)c;                                                                                \
        ProxyState *ps = (ProxyState *)state;                                                                 \
        if (!p || !ps || !size) return ERR;                                                                   \
        if (!p->V.SIZE) return MISSING(p, #SIZE);                                                             \
        Status s = p->V.SIZE(p->inner, (State)ps->inner, size);                                               \
        if (s <= WARN) *size += 1;                                                                            \
        return s;                                                                                             \
    }                                                                                                         \
    EXPORT Status SER(Inst c, State state, Byte bytes[], size_t size) {                                       \
        Proxy *p = (Proxy *)c;                                                                                \
        ProxyState *ps = (ProxyState *)state;                                                                 \
        if (!p || !ps || !bytes || size < 1) return ERR;                                                      \
        if (!p->V.SER) return MISSING(p, #SER);                                                               \
        bytes[0] = (Byte)(ps->applied ? 1 : 0);                                                               \
        return p->V.SER(p->inner, (State)ps->inner, bytes + 1, size - 1);                                     \
    }                                                                                                         \
    EXPORT Status DESER(Inst c, const Byte bytes[], size_t size, State *state) {                              \
        Proxy *p = (Proxy *)c;                                                                                \
        if (!p || !bytes || size < 1 || !state) return ERR;                                                   \
        if (!p->V.DESER) return MISSING(p, #DESER);                                                           \
        ProxyState *ps = (ProxyState *)*state;                                                                \
        State inner = ps ? (State)ps->inner : NULL;                                                           \
        Status s = p->V.DESER(p->inner, bytes + 1, size - 1, &inner);                                         \
        if (s > WARN) return s;                                                                               \
        if (!ps && !(ps = (ProxyState *)calloc(1, sizeof *ps))) {                                             \
            report(p, "fmio_proxy: out of memory for an FMU state");                                          \
            return ERR;                                                                                       \
        }                                                                                                     \
        ps->inner = inner;                                                                                    \
        ps->applied = bytes[0] != 0;                                                                          \
        *state = (State)ps;                                                                                   \
        return s;                                                                                             \
    }

static void clear_records(Proxy *p) {
    for (Rec *r = p->head, *next; r; r = next) {
        next = r->next;
        if (r->kind == K_STRING || r->kind == K_BIN) {
            for (size_t i = 0; i < r->nvalues; i++) free(((void **)r->values)[i]);
        }
        free(r->vrs);
        free(r->values);
        free(r->sizes);
        free(r);
    }
    p->head = p->tail = NULL;
}

/* remember a set call the importer made before the baked values were applied */
static void record(Proxy *p, int kind, const unsigned int *vrs, size_t nvr, const void *values, size_t nvalues,
                   size_t elem, const size_t *sizes) {
    Rec *r = (Rec *)calloc(1, sizeof(Rec));
    if (!r) return;
    r->kind = kind;
    r->nvr = nvr;
    r->nvalues = nvalues;
    r->vrs = (unsigned int *)malloc(nvr * sizeof(unsigned int) + 1);
    r->values = malloc(nvalues * (kind == K_STRING || kind == K_BIN ? sizeof(void *) : elem) + 1);
    if (r->vrs) memcpy(r->vrs, vrs, nvr * sizeof(unsigned int));
    if (r->values && kind == K_STRING) {
        for (size_t i = 0; i < nvalues; i++) {
            const char *s = ((const char *const *)values)[i];
            ((char **)r->values)[i] = s ? strdup(s) : NULL;
        }
    } else if (r->values && kind == K_BIN) {
        r->sizes = (size_t *)malloc(nvalues * sizeof(size_t) + 1);
        for (size_t i = 0; i < nvalues; i++) {
            void *copy = malloc(sizes[i] + 1);
            if (copy) memcpy(copy, ((const void *const *)values)[i], sizes[i]);
            ((void **)r->values)[i] = copy;
            if (r->sizes) r->sizes[i] = sizes[i];
        }
    } else if (r->values) {
        memcpy(r->values, values, nvalues * elem);
    }
    if (p->tail) p->tail->next = r; else p->head = r;
    p->tail = r;
}

static void *load_library(Proxy *p) {
    struct stat st;
    if (stat(p->cfg.binary, &st) != 0) {
        report(p, "fmio_proxy: the original FMU's binary %s is missing (%s)", p->cfg.binary, strerror(errno));
        return NULL;
    }
    void *lib = dlopen(p->cfg.binary, RTLD_NOW | RTLD_LOCAL);
    if (!lib) report(p, "fmio_proxy: cannot load %s: %s", p->cfg.binary, dlerror());
    return lib;
}

static Proxy *new_proxy(const char *resources, int fmi, const char *name, char *err) {
    Proxy *p = (Proxy *)calloc(1, sizeof(Proxy));
    if (!p) {
        snprintf(err, MSG_LEN, "fmio_proxy: out of memory");
        return NULL;
    }
    if (read_config(resources, &p->cfg, err) != 0) {
        free(p);
        return NULL;
    }
    if (p->cfg.fmi != fmi) {
        snprintf(err, MSG_LEN, "fmio_proxy: the configuration is for FMI %d, but was called through FMI %d",
                 p->cfg.fmi, fmi);
        free_config(&p->cfg);
        free(p);
        return NULL;
    }
    p->name = strdup(name ? name : "");
    return p;
}

static void free_proxy(Proxy *p) {
    if (!p) return;
    clear_records(p);
    if (p->lib) dlclose(p->lib);
    free_config(&p->cfg);
    free(p->name);
    free(p);
}

/* make sure the inner FMU's resources folder exists (an FMU may read it even when it ships none) */
static char *inner_resources(Proxy *p) {
    char *dir = join(p->cfg.inner_dir, "resources");
    if (dir) mkdir(dir, 0755); /* usually already there; a read-only location keeps its own */
    return dir;
}

/* ================================================================= FMI 2.0 */

static fmi2Status missing2(Proxy *p, const char *fn) {
    if (p) report(p, "fmio_proxy: the original FMU does not implement %s", fn);
    return fmi2Error;
}

static fmi2Status worst2(fmi2Status a, fmi2Status b) { return a > b ? a : b; }

static fmi2Status apply2(Proxy *p) {
    fmi2Status status = fmi2OK;
    p->applied = 1;
    for (size_t i = 0; i < p->cfg.n_values && status <= fmi2Warning; i++) {
        Baked *b = &p->cfg.values[i];
        const fmi2ValueReference vr = b->vr;
        fmi2Status s;
        if (!strcmp(b->type, "Real")) {
            s = p->f2.fmi2SetReal ? p->f2.fmi2SetReal(p->inner, &vr, 1, &b->v.f64) : missing2(p, "fmi2SetReal");
        } else if (!strcmp(b->type, "Boolean")) {
            fmi2Boolean v = b->v.boolean ? fmi2True : fmi2False;
            s = p->f2.fmi2SetBoolean ? p->f2.fmi2SetBoolean(p->inner, &vr, 1, &v) : missing2(p, "fmi2SetBoolean");
        } else if (!strcmp(b->type, "String")) {
            fmi2String v = b->text;
            s = p->f2.fmi2SetString ? p->f2.fmi2SetString(p->inner, &vr, 1, &v) : missing2(p, "fmi2SetString");
        } else {
            fmi2Integer v = (fmi2Integer)b->v.i64;
            s = p->f2.fmi2SetInteger ? p->f2.fmi2SetInteger(p->inner, &vr, 1, &v) : missing2(p, "fmi2SetInteger");
        }
        if (s > fmi2Warning) report(p, "fmio_proxy: the original FMU refused the written %s value of reference %u",
                                    b->type, vr);
        status = worst2(status, s);
    }
    for (Rec *r = p->head; r && status <= fmi2Warning; r = r->next) {
        switch (r->kind) {
        case K_REAL: status = worst2(status, p->f2.fmi2SetReal(p->inner, r->vrs, r->nvr, (fmi2Real *)r->values)); break;
        case K_INTEGER: status = worst2(status, p->f2.fmi2SetInteger(p->inner, r->vrs, r->nvr, (fmi2Integer *)r->values)); break;
        case K_BOOLEAN: status = worst2(status, p->f2.fmi2SetBoolean(p->inner, r->vrs, r->nvr, (fmi2Boolean *)r->values)); break;
        case K_STRING: status = worst2(status, p->f2.fmi2SetString(p->inner, r->vrs, r->nvr, (fmi2String *)r->values)); break;
        default: break;
        }
    }
    clear_records(p);
    return status;
}

FMI2_Export const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
FMI2_Export const char *fmi2GetVersion(void) { return fmi2Version; }

FMI2_Export fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String fmuGUID,
                                          fmi2String fmuResourceLocation, const fmi2CallbackFunctions *functions,
                                          fmi2Boolean visible, fmi2Boolean loggingOn) {
    char err[MSG_LEN] = "";
    char *resources = fmuResourceLocation ? uri_to_path(fmuResourceLocation) : NULL;
    Proxy *p = resources ? new_proxy(resources, 2, instanceName, err) : NULL;
    (void)fmuGUID; /* the importer checked it against the outer modelDescription.xml */
    free(resources);
    if (!p) {
        if (!fmuResourceLocation) snprintf(err, MSG_LEN, "fmio_proxy: no resource location given; cannot find the original FMU");
        if (functions && functions->logger)
            functions->logger(functions->componentEnvironment, instanceName, fmi2Error, "logStatusError", "%s", err);
        else
            fprintf(stderr, "%s\n", err);
        return NULL;
    }
    p->cb2 = functions;
    p->lib = load_library(p);
    if (!p->lib) goto fail;
#define LOAD2(name) p->f2.name = (name##TYPE *)dlsym(p->lib, #name);
    FMI2_FUNCS(LOAD2)
    if (!p->f2.fmi2Instantiate) {
        missing2(p, "fmi2Instantiate");
        goto fail;
    }
    {
        char *dir = inner_resources(p), *encoded = dir ? pencode_path(dir) : NULL;
        size_t n = encoded ? strlen(encoded) + 16 : 0;
        char *uri = encoded ? (char *)malloc(n) : NULL;
        if (uri) {
            size_t m = strlen(fmuResourceLocation);
            int slash = m > 0 && fmuResourceLocation[m - 1] == '/';
            snprintf(uri, n, "file://%s%s", encoded, slash ? "/" : "");
            p->inner = p->f2.fmi2Instantiate(instanceName, fmuType, p->cfg.token, uri, functions, visible, loggingOn);
        }
        free(dir);
        free(encoded);
        free(uri);
    }
    if (!p->inner) {
        report(p, "fmio_proxy: the original FMU failed to instantiate");
        goto fail;
    }
    return p;
fail:
    free_proxy(p);
    return NULL;
}

FMI2_Export void fmi2FreeInstance(fmi2Component c) {
    Proxy *p = (Proxy *)c;
    if (!p) return;
    if (p->inner && p->f2.fmi2FreeInstance) p->f2.fmi2FreeInstance(p->inner);
    free_proxy(p);
}

FMI2_Export fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean toleranceDefined, fmi2Real tolerance,
                                           fmi2Real startTime, fmi2Boolean stopTimeDefined, fmi2Real stopTime) {
    Proxy *p = (Proxy *)c;
    if (!p) return fmi2Error;
    if (!p->f2.fmi2SetupExperiment) return missing2(p, "fmi2SetupExperiment");
    fmi2Status s = p->f2.fmi2SetupExperiment(p->inner, toleranceDefined, tolerance, startTime, stopTimeDefined,
                                             stopTime);
    if (s > fmi2Warning || p->applied) return s;
    return worst2(s, apply2(p));
}

FMI2_Export fmi2Status fmi2EnterInitializationMode(fmi2Component c) {
    Proxy *p = (Proxy *)c;
    if (!p) return fmi2Error;
    if (!p->f2.fmi2EnterInitializationMode) return missing2(p, "fmi2EnterInitializationMode");
    fmi2Status s = p->applied ? fmi2OK : apply2(p);
    if (s > fmi2Warning) return s;
    return worst2(s, p->f2.fmi2EnterInitializationMode(p->inner));
}

FMI2_Export fmi2Status fmi2Reset(fmi2Component c) {
    Proxy *p = (Proxy *)c;
    if (!p) return fmi2Error;
    if (!p->f2.fmi2Reset) return missing2(p, "fmi2Reset");
    clear_records(p);
    p->applied = 0;
    return p->f2.fmi2Reset(p->inner);
}

#define SET2(fn, ctype, kind)                                                                              \
    FMI2_Export fmi2Status fn(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const ctype value[]) { \
        Proxy *p = (Proxy *)c;                                                                             \
        if (!p) return fmi2Error;                                                                          \
        if (!p->f2.fn) return missing2(p, #fn);                                                            \
        fmi2Status s = p->f2.fn(p->inner, vr, nvr, value);                                                 \
        if (!p->applied && s <= fmi2Warning) record(p, kind, vr, nvr, value, nvr, sizeof(ctype), NULL);   \
        return s;                                                                                          \
    }
SET2(fmi2SetReal, fmi2Real, K_REAL)
SET2(fmi2SetInteger, fmi2Integer, K_INTEGER)
SET2(fmi2SetBoolean, fmi2Boolean, K_BOOLEAN)
SET2(fmi2SetString, fmi2String, K_STRING)

/* plain forwarders: FWD2(name, (parameters), (arguments with p->inner)) */
#define FWD2(fn, params, args)                          \
    FMI2_Export fmi2Status fn params {                  \
        Proxy *p = (Proxy *)c;                          \
        if (!p) return fmi2Error;                       \
        if (!p->f2.fn) return missing2(p, #fn);         \
        return p->f2.fn args;                           \
    }

FWD2(fmi2SetDebugLogging, (fmi2Component c, fmi2Boolean loggingOn, size_t n, const fmi2String categories[]),
     (p->inner, loggingOn, n, categories))
FWD2(fmi2ExitInitializationMode, (fmi2Component c), (p->inner))
FWD2(fmi2Terminate, (fmi2Component c), (p->inner))
FWD2(fmi2GetReal, (fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Real value[]), (p->inner, vr, nvr, value))
FWD2(fmi2GetInteger, (fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Integer value[]), (p->inner, vr, nvr, value))
FWD2(fmi2GetBoolean, (fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Boolean value[]), (p->inner, vr, nvr, value))
FWD2(fmi2GetString, (fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2String value[]), (p->inner, vr, nvr, value))
STATE_FUNCS(f2, FMI2_Export, fmi2Component, fmi2FMUstate, fmi2Byte, fmi2Status, fmi2Warning, fmi2Error,
            fmi2GetFMUstate, fmi2SetFMUstate, fmi2FreeFMUstate, fmi2SerializedFMUstateSize, fmi2SerializeFMUstate,
            fmi2DeSerializeFMUstate, missing2)
FWD2(fmi2GetDirectionalDerivative, (fmi2Component c, const fmi2ValueReference vu[], size_t nu, const fmi2ValueReference vk[],
                                    size_t nk, const fmi2Real dvk[], fmi2Real dvu[]), (p->inner, vu, nu, vk, nk, dvk, dvu))
FWD2(fmi2EnterEventMode, (fmi2Component c), (p->inner))
FWD2(fmi2NewDiscreteStates, (fmi2Component c, fmi2EventInfo *info), (p->inner, info))
FWD2(fmi2EnterContinuousTimeMode, (fmi2Component c), (p->inner))
FWD2(fmi2CompletedIntegratorStep, (fmi2Component c, fmi2Boolean noSetFMUStatePriorToCurrentPoint, fmi2Boolean *enterEventMode,
                                   fmi2Boolean *terminateSimulation), (p->inner, noSetFMUStatePriorToCurrentPoint, enterEventMode, terminateSimulation))
FWD2(fmi2SetTime, (fmi2Component c, fmi2Real time), (p->inner, time))
FWD2(fmi2SetContinuousStates, (fmi2Component c, const fmi2Real x[], size_t nx), (p->inner, x, nx))
FWD2(fmi2GetDerivatives, (fmi2Component c, fmi2Real derivatives[], size_t nx), (p->inner, derivatives, nx))
FWD2(fmi2GetEventIndicators, (fmi2Component c, fmi2Real indicators[], size_t ni), (p->inner, indicators, ni))
FWD2(fmi2GetContinuousStates, (fmi2Component c, fmi2Real x[], size_t nx), (p->inner, x, nx))
FWD2(fmi2GetNominalsOfContinuousStates, (fmi2Component c, fmi2Real nominals[], size_t nx), (p->inner, nominals, nx))
FWD2(fmi2SetRealInputDerivatives, (fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Integer order[],
                                   const fmi2Real value[]), (p->inner, vr, nvr, order, value))
FWD2(fmi2GetRealOutputDerivatives, (fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Integer order[],
                                    fmi2Real value[]), (p->inner, vr, nvr, order, value))
FWD2(fmi2DoStep, (fmi2Component c, fmi2Real t, fmi2Real h, fmi2Boolean noSetFMUStatePriorToCurrentPoint),
     (p->inner, t, h, noSetFMUStatePriorToCurrentPoint))
FWD2(fmi2CancelStep, (fmi2Component c), (p->inner))
FWD2(fmi2GetStatus, (fmi2Component c, const fmi2StatusKind s, fmi2Status *value), (p->inner, s, value))
FWD2(fmi2GetRealStatus, (fmi2Component c, const fmi2StatusKind s, fmi2Real *value), (p->inner, s, value))
FWD2(fmi2GetIntegerStatus, (fmi2Component c, const fmi2StatusKind s, fmi2Integer *value), (p->inner, s, value))
FWD2(fmi2GetBooleanStatus, (fmi2Component c, const fmi2StatusKind s, fmi2Boolean *value), (p->inner, s, value))
FWD2(fmi2GetStringStatus, (fmi2Component c, const fmi2StatusKind s, fmi2String *value), (p->inner, s, value))

/* ================================================================= FMI 3.0 */

static fmi3Status missing3(Proxy *p, const char *fn) {
    if (p) report(p, "fmio_proxy: the original FMU does not implement %s", fn);
    return fmi3Error;
}

static fmi3Status worst3(fmi3Status a, fmi3Status b) { return a > b ? a : b; }

#define CALL3(fn, ...) (p->f3.fn ? p->f3.fn(__VA_ARGS__) : missing3(p, #fn))

static fmi3Status apply3(Proxy *p) {
    fmi3Status status = fmi3OK;
    p->applied = 1;
    for (size_t i = 0; i < p->cfg.n_values && status <= fmi3Warning; i++) {
        Baked *b = &p->cfg.values[i];
        const fmi3ValueReference vr = b->vr;
        const char *t = b->type;
        fmi3Status s;
        if (!strcmp(t, "Float64")) s = CALL3(fmi3SetFloat64, p->inner, &vr, 1, &b->v.f64, 1);
        else if (!strcmp(t, "Float32")) s = CALL3(fmi3SetFloat32, p->inner, &vr, 1, &b->v.f32, 1);
        else if (!strcmp(t, "Int8")) { fmi3Int8 v = (fmi3Int8)b->v.i64; s = CALL3(fmi3SetInt8, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "UInt8")) { fmi3UInt8 v = (fmi3UInt8)b->v.u64; s = CALL3(fmi3SetUInt8, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "Int16")) { fmi3Int16 v = (fmi3Int16)b->v.i64; s = CALL3(fmi3SetInt16, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "UInt16")) { fmi3UInt16 v = (fmi3UInt16)b->v.u64; s = CALL3(fmi3SetUInt16, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "Int32")) { fmi3Int32 v = (fmi3Int32)b->v.i64; s = CALL3(fmi3SetInt32, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "UInt32")) { fmi3UInt32 v = (fmi3UInt32)b->v.u64; s = CALL3(fmi3SetUInt32, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "Int64") || !strcmp(t, "Enumeration")) { fmi3Int64 v = b->v.i64; s = CALL3(fmi3SetInt64, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "UInt64")) { fmi3UInt64 v = b->v.u64; s = CALL3(fmi3SetUInt64, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "Boolean")) { fmi3Boolean v = b->v.boolean ? fmi3True : fmi3False; s = CALL3(fmi3SetBoolean, p->inner, &vr, 1, &v, 1); }
        else if (!strcmp(t, "String")) { fmi3String v = b->text; s = CALL3(fmi3SetString, p->inner, &vr, 1, &v, 1); }
        else { report(p, "fmio_proxy: unknown value type %s", t); s = fmi3Error; }
        if (s > fmi3Warning) report(p, "fmio_proxy: the original FMU refused the written %s value of reference %u", t, vr);
        status = worst3(status, s);
    }
    for (Rec *r = p->head; r && status <= fmi3Warning; r = r->next) {
        fmi3Status s = fmi3OK;
        switch (r->kind) {
        case K_F32: s = CALL3(fmi3SetFloat32, p->inner, r->vrs, r->nvr, (fmi3Float32 *)r->values, r->nvalues); break;
        case K_F64: s = CALL3(fmi3SetFloat64, p->inner, r->vrs, r->nvr, (fmi3Float64 *)r->values, r->nvalues); break;
        case K_I8: s = CALL3(fmi3SetInt8, p->inner, r->vrs, r->nvr, (fmi3Int8 *)r->values, r->nvalues); break;
        case K_U8: s = CALL3(fmi3SetUInt8, p->inner, r->vrs, r->nvr, (fmi3UInt8 *)r->values, r->nvalues); break;
        case K_I16: s = CALL3(fmi3SetInt16, p->inner, r->vrs, r->nvr, (fmi3Int16 *)r->values, r->nvalues); break;
        case K_U16: s = CALL3(fmi3SetUInt16, p->inner, r->vrs, r->nvr, (fmi3UInt16 *)r->values, r->nvalues); break;
        case K_I32: s = CALL3(fmi3SetInt32, p->inner, r->vrs, r->nvr, (fmi3Int32 *)r->values, r->nvalues); break;
        case K_U32: s = CALL3(fmi3SetUInt32, p->inner, r->vrs, r->nvr, (fmi3UInt32 *)r->values, r->nvalues); break;
        case K_I64: s = CALL3(fmi3SetInt64, p->inner, r->vrs, r->nvr, (fmi3Int64 *)r->values, r->nvalues); break;
        case K_U64: s = CALL3(fmi3SetUInt64, p->inner, r->vrs, r->nvr, (fmi3UInt64 *)r->values, r->nvalues); break;
        case K_BOOLEAN: s = CALL3(fmi3SetBoolean, p->inner, r->vrs, r->nvr, (fmi3Boolean *)r->values, r->nvalues); break;
        case K_STRING: s = CALL3(fmi3SetString, p->inner, r->vrs, r->nvr, (fmi3String *)r->values, r->nvalues); break;
        case K_BIN: s = CALL3(fmi3SetBinary, p->inner, r->vrs, r->nvr, r->sizes, (fmi3Binary *)r->values, r->nvalues); break;
        default: break;
        }
        status = worst3(status, s);
    }
    clear_records(p);
    return status;
}

FMI3_Export const char *fmi3GetVersion(void) { return fmi3Version; }

/* common part of the three instantiate functions: the proxy with its library, and the inner resource path */
static Proxy *start3(fmi3String instanceName, fmi3String resourcePath, fmi3InstanceEnvironment env,
                     fmi3LogMessageCallback log, const char *which, char **inner_path) {
    char err[MSG_LEN] = "";
    char *resources = resourcePath ? uri_to_path(resourcePath) : NULL;
    Proxy *p = resources ? new_proxy(resources, 3, instanceName, err) : NULL;
    free(resources);
    if (!p) {
        if (!resourcePath) snprintf(err, MSG_LEN, "fmio_proxy: no resource path given; cannot find the original FMU");
        if (log) log(env, fmi3Error, "logStatusError", err); else fprintf(stderr, "%s\n", err);
        return NULL;
    }
    p->env3 = env;
    p->log3 = log;
    p->lib = load_library(p);
    if (!p->lib) goto fail;
#define LOAD3(name) p->f3.name = (name##TYPE *)dlsym(p->lib, #name);
    FMI3_FUNCS(LOAD3)
    {
        char *dir = inner_resources(p);
        *inner_path = dir ? join(dir, "") : NULL; /* FMI 3.0: a native path ending with the separator */
        free(dir);
    }
    if (!*inner_path) goto fail;
    (void)which;
    return p;
fail:
    free_proxy(p);
    return NULL;
}

static fmi3Instance finish3(Proxy *p, fmi3Instance inner, char *inner_path) {
    free(inner_path);
    if (!p) return NULL;
    p->inner = inner;
    if (!inner) {
        report(p, "fmio_proxy: the original FMU failed to instantiate");
        free_proxy(p);
        return NULL;
    }
    return p;
}

FMI3_Export fmi3Instance fmi3InstantiateModelExchange(fmi3String instanceName, fmi3String instantiationToken,
                                                      fmi3String resourcePath, fmi3Boolean visible,
                                                      fmi3Boolean loggingOn, fmi3InstanceEnvironment env,
                                                      fmi3LogMessageCallback logMessage) {
    char *path = NULL;
    Proxy *p = start3(instanceName, resourcePath, env, logMessage, "ModelExchange", &path);
    (void)instantiationToken;
    if (!p) return NULL;
    if (!p->f3.fmi3InstantiateModelExchange) {
        missing3(p, "fmi3InstantiateModelExchange");
        return finish3(p, NULL, path);
    }
    return finish3(p, p->f3.fmi3InstantiateModelExchange(instanceName, p->cfg.token, path, visible, loggingOn, env,
                                                         logMessage), path);
}

FMI3_Export fmi3Instance fmi3InstantiateCoSimulation(fmi3String instanceName, fmi3String instantiationToken,
                                                     fmi3String resourcePath, fmi3Boolean visible,
                                                     fmi3Boolean loggingOn, fmi3Boolean eventModeUsed,
                                                     fmi3Boolean earlyReturnAllowed,
                                                     const fmi3ValueReference requiredIntermediateVariables[],
                                                     size_t nRequiredIntermediateVariables,
                                                     fmi3InstanceEnvironment env, fmi3LogMessageCallback logMessage,
                                                     fmi3IntermediateUpdateCallback intermediateUpdate) {
    char *path = NULL;
    Proxy *p = start3(instanceName, resourcePath, env, logMessage, "CoSimulation", &path);
    (void)instantiationToken;
    if (!p) return NULL;
    if (!p->f3.fmi3InstantiateCoSimulation) {
        missing3(p, "fmi3InstantiateCoSimulation");
        return finish3(p, NULL, path);
    }
    return finish3(p, p->f3.fmi3InstantiateCoSimulation(instanceName, p->cfg.token, path, visible, loggingOn,
                                                        eventModeUsed, earlyReturnAllowed,
                                                        requiredIntermediateVariables,
                                                        nRequiredIntermediateVariables, env, logMessage,
                                                        intermediateUpdate), path);
}

FMI3_Export fmi3Instance fmi3InstantiateScheduledExecution(fmi3String instanceName, fmi3String instantiationToken,
                                                           fmi3String resourcePath, fmi3Boolean visible,
                                                           fmi3Boolean loggingOn, fmi3InstanceEnvironment env,
                                                           fmi3LogMessageCallback logMessage,
                                                           fmi3ClockUpdateCallback clockUpdate,
                                                           fmi3LockPreemptionCallback lockPreemption,
                                                           fmi3UnlockPreemptionCallback unlockPreemption) {
    char *path = NULL;
    Proxy *p = start3(instanceName, resourcePath, env, logMessage, "ScheduledExecution", &path);
    (void)instantiationToken;
    if (!p) return NULL;
    if (!p->f3.fmi3InstantiateScheduledExecution) {
        missing3(p, "fmi3InstantiateScheduledExecution");
        return finish3(p, NULL, path);
    }
    return finish3(p, p->f3.fmi3InstantiateScheduledExecution(instanceName, p->cfg.token, path, visible, loggingOn,
                                                              env, logMessage, clockUpdate, lockPreemption,
                                                              unlockPreemption), path);
}

FMI3_Export void fmi3FreeInstance(fmi3Instance instance) {
    Proxy *p = (Proxy *)instance;
    if (!p) return;
    if (p->inner && p->f3.fmi3FreeInstance) p->f3.fmi3FreeInstance(p->inner);
    free_proxy(p);
}

FMI3_Export fmi3Status fmi3EnterInitializationMode(fmi3Instance instance, fmi3Boolean toleranceDefined,
                                                   fmi3Float64 tolerance, fmi3Float64 startTime,
                                                   fmi3Boolean stopTimeDefined, fmi3Float64 stopTime) {
    Proxy *p = (Proxy *)instance;
    if (!p) return fmi3Error;
    if (!p->f3.fmi3EnterInitializationMode) return missing3(p, "fmi3EnterInitializationMode");
    fmi3Status s = p->applied ? fmi3OK : apply3(p);
    if (s > fmi3Warning) return s;
    return worst3(s, p->f3.fmi3EnterInitializationMode(p->inner, toleranceDefined, tolerance, startTime,
                                                       stopTimeDefined, stopTime));
}

FMI3_Export fmi3Status fmi3Reset(fmi3Instance instance) {
    Proxy *p = (Proxy *)instance;
    if (!p) return fmi3Error;
    if (!p->f3.fmi3Reset) return missing3(p, "fmi3Reset");
    clear_records(p);
    p->applied = 0;
    return p->f3.fmi3Reset(p->inner);
}

#define SET3(fn, ctype, kind)                                                                                  \
    FMI3_Export fmi3Status fn(fmi3Instance instance, const fmi3ValueReference vr[], size_t nvr,               \
                              const ctype values[], size_t nValues) {                                         \
        Proxy *p = (Proxy *)instance;                                                                          \
        if (!p) return fmi3Error;                                                                              \
        if (!p->f3.fn) return missing3(p, #fn);                                                                \
        fmi3Status s = p->f3.fn(p->inner, vr, nvr, values, nValues);                                           \
        if (!p->applied && s <= fmi3Warning) record(p, kind, vr, nvr, values, nValues, sizeof(ctype), NULL);   \
        return s;                                                                                              \
    }
SET3(fmi3SetFloat32, fmi3Float32, K_F32)
SET3(fmi3SetFloat64, fmi3Float64, K_F64)
SET3(fmi3SetInt8, fmi3Int8, K_I8)
SET3(fmi3SetUInt8, fmi3UInt8, K_U8)
SET3(fmi3SetInt16, fmi3Int16, K_I16)
SET3(fmi3SetUInt16, fmi3UInt16, K_U16)
SET3(fmi3SetInt32, fmi3Int32, K_I32)
SET3(fmi3SetUInt32, fmi3UInt32, K_U32)
SET3(fmi3SetInt64, fmi3Int64, K_I64)
SET3(fmi3SetUInt64, fmi3UInt64, K_U64)
SET3(fmi3SetBoolean, fmi3Boolean, K_BOOLEAN)
SET3(fmi3SetString, fmi3String, K_STRING)

FMI3_Export fmi3Status fmi3SetBinary(fmi3Instance instance, const fmi3ValueReference vr[], size_t nvr,
                                     const size_t valueSizes[], const fmi3Binary values[], size_t nValues) {
    Proxy *p = (Proxy *)instance;
    if (!p) return fmi3Error;
    if (!p->f3.fmi3SetBinary) return missing3(p, "fmi3SetBinary");
    fmi3Status s = p->f3.fmi3SetBinary(p->inner, vr, nvr, valueSizes, values, nValues);
    if (!p->applied && s <= fmi3Warning) record(p, K_BIN, vr, nvr, values, nValues, sizeof(void *), valueSizes);
    return s;
}

#define FWD3(fn, params, args)                  \
    FMI3_Export fmi3Status fn params {          \
        Proxy *p = (Proxy *)instance;           \
        if (!p) return fmi3Error;               \
        if (!p->f3.fn) return missing3(p, #fn); \
        return p->f3.fn args;                   \
    }
#define VRS const fmi3ValueReference vr[], size_t nvr
#define GET3(fn, ctype) FWD3(fn, (fmi3Instance instance, VRS, ctype values[], size_t nValues), (p->inner, vr, nvr, values, nValues))

FWD3(fmi3SetDebugLogging, (fmi3Instance instance, fmi3Boolean loggingOn, size_t n, const fmi3String categories[]),
     (p->inner, loggingOn, n, categories))
FWD3(fmi3ExitInitializationMode, (fmi3Instance instance), (p->inner))
FWD3(fmi3EnterEventMode, (fmi3Instance instance), (p->inner))
FWD3(fmi3Terminate, (fmi3Instance instance), (p->inner))
GET3(fmi3GetFloat32, fmi3Float32)
GET3(fmi3GetFloat64, fmi3Float64)
GET3(fmi3GetInt8, fmi3Int8)
GET3(fmi3GetUInt8, fmi3UInt8)
GET3(fmi3GetInt16, fmi3Int16)
GET3(fmi3GetUInt16, fmi3UInt16)
GET3(fmi3GetInt32, fmi3Int32)
GET3(fmi3GetUInt32, fmi3UInt32)
GET3(fmi3GetInt64, fmi3Int64)
GET3(fmi3GetUInt64, fmi3UInt64)
GET3(fmi3GetBoolean, fmi3Boolean)
GET3(fmi3GetString, fmi3String)
FWD3(fmi3GetBinary, (fmi3Instance instance, VRS, size_t valueSizes[], fmi3Binary values[], size_t nValues),
     (p->inner, vr, nvr, valueSizes, values, nValues))
FWD3(fmi3GetClock, (fmi3Instance instance, VRS, fmi3Clock values[]), (p->inner, vr, nvr, values))
FWD3(fmi3SetClock, (fmi3Instance instance, VRS, const fmi3Clock values[]), (p->inner, vr, nvr, values))
FWD3(fmi3GetNumberOfVariableDependencies, (fmi3Instance instance, fmi3ValueReference vr, size_t *n), (p->inner, vr, n))
FWD3(fmi3GetVariableDependencies, (fmi3Instance instance, fmi3ValueReference dependent, size_t elementIndicesOfDependent[],
                                   fmi3ValueReference independents[], size_t elementIndicesIndependents[],
                                   fmi3DependencyKind dependencyKinds[], size_t nDependencies),
     (p->inner, dependent, elementIndicesOfDependent, independents, elementIndicesIndependents, dependencyKinds, nDependencies))
STATE_FUNCS(f3, FMI3_Export, fmi3Instance, fmi3FMUState, fmi3Byte, fmi3Status, fmi3Warning, fmi3Error,
            fmi3GetFMUState, fmi3SetFMUState, fmi3FreeFMUState, fmi3SerializedFMUStateSize, fmi3SerializeFMUState,
            fmi3DeserializeFMUState, missing3)
FWD3(fmi3GetDirectionalDerivative, (fmi3Instance instance, const fmi3ValueReference unknowns[], size_t nUnknowns,
                                    const fmi3ValueReference knowns[], size_t nKnowns, const fmi3Float64 seed[], size_t nSeed,
                                    fmi3Float64 sensitivity[], size_t nSensitivity),
     (p->inner, unknowns, nUnknowns, knowns, nKnowns, seed, nSeed, sensitivity, nSensitivity))
FWD3(fmi3GetAdjointDerivative, (fmi3Instance instance, const fmi3ValueReference unknowns[], size_t nUnknowns,
                                const fmi3ValueReference knowns[], size_t nKnowns, const fmi3Float64 seed[], size_t nSeed,
                                fmi3Float64 sensitivity[], size_t nSensitivity),
     (p->inner, unknowns, nUnknowns, knowns, nKnowns, seed, nSeed, sensitivity, nSensitivity))
FWD3(fmi3EnterConfigurationMode, (fmi3Instance instance), (p->inner))
FWD3(fmi3ExitConfigurationMode, (fmi3Instance instance), (p->inner))
FWD3(fmi3GetIntervalDecimal, (fmi3Instance instance, VRS, fmi3Float64 intervals[], fmi3IntervalQualifier qualifiers[]),
     (p->inner, vr, nvr, intervals, qualifiers))
FWD3(fmi3GetIntervalFraction, (fmi3Instance instance, VRS, fmi3UInt64 counters[], fmi3UInt64 resolutions[],
                               fmi3IntervalQualifier qualifiers[]), (p->inner, vr, nvr, counters, resolutions, qualifiers))
FWD3(fmi3GetShiftDecimal, (fmi3Instance instance, VRS, fmi3Float64 shifts[]), (p->inner, vr, nvr, shifts))
FWD3(fmi3GetShiftFraction, (fmi3Instance instance, VRS, fmi3UInt64 counters[], fmi3UInt64 resolutions[]),
     (p->inner, vr, nvr, counters, resolutions))
FWD3(fmi3SetIntervalDecimal, (fmi3Instance instance, VRS, const fmi3Float64 intervals[]), (p->inner, vr, nvr, intervals))
FWD3(fmi3SetIntervalFraction, (fmi3Instance instance, VRS, const fmi3UInt64 counters[], const fmi3UInt64 resolutions[]),
     (p->inner, vr, nvr, counters, resolutions))
FWD3(fmi3SetShiftDecimal, (fmi3Instance instance, VRS, const fmi3Float64 shifts[]), (p->inner, vr, nvr, shifts))
FWD3(fmi3SetShiftFraction, (fmi3Instance instance, VRS, const fmi3UInt64 counters[], const fmi3UInt64 resolutions[]),
     (p->inner, vr, nvr, counters, resolutions))
FWD3(fmi3EvaluateDiscreteStates, (fmi3Instance instance), (p->inner))
FWD3(fmi3UpdateDiscreteStates, (fmi3Instance instance, fmi3Boolean *discreteStatesNeedUpdate, fmi3Boolean *terminateSimulation,
                                fmi3Boolean *nominalsOfContinuousStatesChanged, fmi3Boolean *valuesOfContinuousStatesChanged,
                                fmi3Boolean *nextEventTimeDefined, fmi3Float64 *nextEventTime),
     (p->inner, discreteStatesNeedUpdate, terminateSimulation, nominalsOfContinuousStatesChanged,
      valuesOfContinuousStatesChanged, nextEventTimeDefined, nextEventTime))
FWD3(fmi3EnterContinuousTimeMode, (fmi3Instance instance), (p->inner))
FWD3(fmi3CompletedIntegratorStep, (fmi3Instance instance, fmi3Boolean noSetFMUStatePriorToCurrentPoint,
                                   fmi3Boolean *enterEventMode, fmi3Boolean *terminateSimulation),
     (p->inner, noSetFMUStatePriorToCurrentPoint, enterEventMode, terminateSimulation))
FWD3(fmi3SetTime, (fmi3Instance instance, fmi3Float64 time), (p->inner, time))
FWD3(fmi3SetContinuousStates, (fmi3Instance instance, const fmi3Float64 x[], size_t nx), (p->inner, x, nx))
FWD3(fmi3GetContinuousStateDerivatives, (fmi3Instance instance, fmi3Float64 d[], size_t nx), (p->inner, d, nx))
FWD3(fmi3GetEventIndicators, (fmi3Instance instance, fmi3Float64 z[], size_t nz), (p->inner, z, nz))
FWD3(fmi3GetContinuousStates, (fmi3Instance instance, fmi3Float64 x[], size_t nx), (p->inner, x, nx))
FWD3(fmi3GetNominalsOfContinuousStates, (fmi3Instance instance, fmi3Float64 nominals[], size_t nx), (p->inner, nominals, nx))
FWD3(fmi3GetNumberOfEventIndicators, (fmi3Instance instance, size_t *n), (p->inner, n))
FWD3(fmi3GetNumberOfContinuousStates, (fmi3Instance instance, size_t *n), (p->inner, n))
FWD3(fmi3EnterStepMode, (fmi3Instance instance), (p->inner))
FWD3(fmi3GetOutputDerivatives, (fmi3Instance instance, VRS, const fmi3Int32 orders[], fmi3Float64 values[], size_t nValues),
     (p->inner, vr, nvr, orders, values, nValues))
FWD3(fmi3DoStep, (fmi3Instance instance, fmi3Float64 t, fmi3Float64 h, fmi3Boolean noSetFMUStatePriorToCurrentPoint,
                  fmi3Boolean *eventHandlingNeeded, fmi3Boolean *terminateSimulation, fmi3Boolean *earlyReturn,
                  fmi3Float64 *lastSuccessfulTime),
     (p->inner, t, h, noSetFMUStatePriorToCurrentPoint, eventHandlingNeeded, terminateSimulation, earlyReturn,
      lastSuccessfulTime))
FWD3(fmi3ActivateModelPartition, (fmi3Instance instance, fmi3ValueReference clockReference, fmi3Float64 activationTime),
     (p->inner, clockReference, activationTime))

/* ================================================================= FMI 1.0 co-simulation */
/* The written FMU's model identifier is fmio_proxy, so its functions are fmio_proxy_fmi...; the inner
 * functions carry the original model identifier as prefix (read from proxy.cfg). */

#define FMI1_Export __attribute__((visibility("default")))

static fmi1Status missing1(Proxy *p, const char *fn) {
    if (p) report(p, "fmio_proxy: the original FMU does not implement fmi%s", fn);
    return fmi1Error;
}

static fmi1Status worst1(fmi1Status a, fmi1Status b) { return a > b ? a : b; }

static fmi1Status apply1(Proxy *p) {
    fmi1Status status = fmi1OK;
    p->applied = 1;
    for (size_t i = 0; i < p->cfg.n_values && status <= fmi1Warning; i++) {
        Baked *b = &p->cfg.values[i];
        const fmi1ValueReference vr = b->vr;
        fmi1Status s;
        if (!strcmp(b->type, "Real")) {
            s = p->f1.SetReal ? p->f1.SetReal(p->inner, &vr, 1, &b->v.f64) : missing1(p, "SetReal");
        } else if (!strcmp(b->type, "Boolean")) {
            fmi1Boolean v = b->v.boolean ? 1 : 0;
            s = p->f1.SetBoolean ? p->f1.SetBoolean(p->inner, &vr, 1, &v) : missing1(p, "SetBoolean");
        } else if (!strcmp(b->type, "String")) {
            fmi1String v = b->text;
            s = p->f1.SetString ? p->f1.SetString(p->inner, &vr, 1, &v) : missing1(p, "SetString");
        } else {
            fmi1Integer v = (fmi1Integer)b->v.i64;
            s = p->f1.SetInteger ? p->f1.SetInteger(p->inner, &vr, 1, &v) : missing1(p, "SetInteger");
        }
        if (s > fmi1Warning) report(p, "fmio_proxy: the original FMU refused the written %s value of reference %u",
                                    b->type, vr);
        status = worst1(status, s);
    }
    for (Rec *r = p->head; r && status <= fmi1Warning; r = r->next) {
        switch (r->kind) {
        case K_REAL: status = worst1(status, p->f1.SetReal(p->inner, r->vrs, r->nvr, (fmi1Real *)r->values)); break;
        case K_INTEGER: status = worst1(status, p->f1.SetInteger(p->inner, r->vrs, r->nvr, (fmi1Integer *)r->values)); break;
        case K_BOOLEAN: status = worst1(status, p->f1.SetBoolean(p->inner, r->vrs, r->nvr, (fmi1Boolean *)r->values)); break;
        case K_STRING: status = worst1(status, p->f1.SetString(p->inner, r->vrs, r->nvr, (fmi1String *)r->values)); break;
        default: break;
        }
    }
    clear_records(p);
    return status;
}

FMI1_Export const char *fmio_proxy_fmiGetTypesPlatform(void) { return "standard32"; }
FMI1_Export const char *fmio_proxy_fmiGetVersion(void) { return "1.0"; }

FMI1_Export fmi1Component fmio_proxy_fmiInstantiateSlave(fmi1String instanceName, fmi1String fmuGUID,
                                                         fmi1String fmuLocation, fmi1String mimeType,
                                                         fmi1Real timeout, fmi1Boolean visible,
                                                         fmi1Boolean interactive, fmi1CallbackFunctions functions,
                                                         fmi1Boolean loggingOn) {
    char err[MSG_LEN] = "";
    char *location = fmuLocation ? uri_to_path(fmuLocation) : NULL;
    char *resources = location ? join(location, "resources") : NULL;
    Proxy *p = resources ? new_proxy(resources, 1, instanceName, err) : NULL;
    (void)fmuGUID;
    free(location);
    free(resources);
    if (!p) {
        if (!fmuLocation) snprintf(err, MSG_LEN, "fmio_proxy: no FMU location given; cannot find the original FMU");
        if (functions.logger) functions.logger(NULL, instanceName, fmi1Error, "error", "%s", err);
        else fprintf(stderr, "%s\n", err);
        return NULL;
    }
    p->cb1 = functions;
    p->lib = load_library(p);
    if (!p->lib) goto fail;
    {
        char symbol[512];
#define LOAD1(name, type) snprintf(symbol, sizeof symbol, "%s_fmi" #name, p->cfg.identifier); \
        p->f1.name = (type *)dlsym(p->lib, symbol);
        FMI1_FUNCS(LOAD1)
    }
    if (!p->f1.InstantiateSlave) {
        missing1(p, "InstantiateSlave");
        goto fail;
    }
    {
        char *dir = inner_resources(p), *encoded = pencode_path(p->cfg.inner_dir);
        size_t n = encoded ? strlen(encoded) + 16 : 0;
        char *uri = encoded ? (char *)malloc(n) : NULL;
        if (uri) {
            snprintf(uri, n, "file://%s", encoded);
            p->inner = p->f1.InstantiateSlave(instanceName, p->cfg.token, uri, mimeType, timeout, visible, interactive,
                                              functions, loggingOn);
        }
        free(dir);
        free(encoded);
        free(uri);
    }
    if (!p->inner) {
        report(p, "fmio_proxy: the original FMU failed to instantiate");
        goto fail;
    }
    return p;
fail:
    free_proxy(p);
    return NULL;
}

FMI1_Export void fmio_proxy_fmiFreeSlaveInstance(fmi1Component c) {
    Proxy *p = (Proxy *)c;
    if (!p) return;
    if (p->inner && p->f1.FreeSlaveInstance) p->f1.FreeSlaveInstance(p->inner);
    free_proxy(p);
}

FMI1_Export fmi1Status fmio_proxy_fmiInitializeSlave(fmi1Component c, fmi1Real tStart, fmi1Boolean stopTimeDefined,
                                                    fmi1Real tStop) {
    Proxy *p = (Proxy *)c;
    if (!p) return fmi1Error;
    if (!p->f1.InitializeSlave) return missing1(p, "InitializeSlave");
    fmi1Status s = p->applied ? fmi1OK : apply1(p);
    if (s > fmi1Warning) return s;
    return worst1(s, p->f1.InitializeSlave(p->inner, tStart, stopTimeDefined, tStop));
}

FMI1_Export fmi1Status fmio_proxy_fmiResetSlave(fmi1Component c) {
    Proxy *p = (Proxy *)c;
    if (!p) return fmi1Error;
    if (!p->f1.ResetSlave) return missing1(p, "ResetSlave");
    clear_records(p);
    p->applied = 0;
    return p->f1.ResetSlave(p->inner);
}

#define SET1(name, ctype, kind)                                                                             \
    FMI1_Export fmi1Status fmio_proxy_fmi##name(fmi1Component c, const fmi1ValueReference vr[], size_t nvr, \
                                                const ctype value[]) {                                      \
        Proxy *p = (Proxy *)c;                                                                              \
        if (!p) return fmi1Error;                                                                           \
        if (!p->f1.name) return missing1(p, #name);                                                         \
        fmi1Status s = p->f1.name(p->inner, vr, nvr, value);                                                \
        if (!p->applied && s <= fmi1Warning) record(p, kind, vr, nvr, value, nvr, sizeof(ctype), NULL);     \
        return s;                                                                                           \
    }
SET1(SetReal, fmi1Real, K_REAL)
SET1(SetInteger, fmi1Integer, K_INTEGER)
SET1(SetBoolean, fmi1Boolean, K_BOOLEAN)
SET1(SetString, fmi1String, K_STRING)

#define FWD1(name, params, args)                        \
    FMI1_Export fmi1Status fmio_proxy_fmi##name params { \
        Proxy *p = (Proxy *)c;                          \
        if (!p) return fmi1Error;                       \
        if (!p->f1.name) return missing1(p, #name);     \
        return p->f1.name args;                         \
    }

FWD1(SetDebugLogging, (fmi1Component c, fmi1Boolean loggingOn), (p->inner, loggingOn))
FWD1(GetReal, (fmi1Component c, const fmi1ValueReference vr[], size_t nvr, fmi1Real value[]), (p->inner, vr, nvr, value))
FWD1(GetInteger, (fmi1Component c, const fmi1ValueReference vr[], size_t nvr, fmi1Integer value[]), (p->inner, vr, nvr, value))
FWD1(GetBoolean, (fmi1Component c, const fmi1ValueReference vr[], size_t nvr, fmi1Boolean value[]), (p->inner, vr, nvr, value))
FWD1(GetString, (fmi1Component c, const fmi1ValueReference vr[], size_t nvr, fmi1String value[]), (p->inner, vr, nvr, value))
FWD1(TerminateSlave, (fmi1Component c), (p->inner))
FWD1(SetRealInputDerivatives, (fmi1Component c, const fmi1ValueReference vr[], size_t nvr, const fmi1Integer order[],
                               const fmi1Real value[]), (p->inner, vr, nvr, order, value))
FWD1(GetRealOutputDerivatives, (fmi1Component c, const fmi1ValueReference vr[], size_t nvr, const fmi1Integer order[],
                                fmi1Real value[]), (p->inner, vr, nvr, order, value))
FWD1(CancelStep, (fmi1Component c), (p->inner))
FWD1(DoStep, (fmi1Component c, fmi1Real t, fmi1Real h, fmi1Boolean newStep), (p->inner, t, h, newStep))
FWD1(GetStatus, (fmi1Component c, const fmi1StatusKind s, fmi1Status *value), (p->inner, s, value))
FWD1(GetRealStatus, (fmi1Component c, const fmi1StatusKind s, fmi1Real *value), (p->inner, s, value))
FWD1(GetIntegerStatus, (fmi1Component c, const fmi1StatusKind s, fmi1Integer *value), (p->inner, s, value))
FWD1(GetBooleanStatus, (fmi1Component c, const fmi1StatusKind s, fmi1Boolean *value), (p->inner, s, value))
FWD1(GetStringStatus, (fmi1Component c, const fmi1StatusKind s, fmi1String *value), (p->inner, s, value))
