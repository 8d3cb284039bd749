/* building_zone - gray-box thermal zone (air node + envelope/internal mass node) driven by
 * input signals read from resources/inputs.csv; compares its sensor reading with
 * resources/measured.csv to report the calibration residual (physics only).
 * Equations: fmus/README.md, section building_zone. */
#include "fmio_runtime.h"
#include "model_vars.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RHO_CP_AIR 1206.0   /* J/(m3 K) */
#define SOLAR_TO_AIR 0.4    /* share of transmitted solar gain absorbed by air and furniture */
#define Q_OCCUPANT_FULL 1500.0 /* W of people + equipment at occupancy 1 */
#define Q_BASE 200.0        /* W always on */
#define ZERO_C 273.15

enum { X_AIR, X_MASS, X_EHVAC, N_X };

typedef struct {
    int n;            /* rows */
    double dt;        /* s between rows */
    double *t_out, *i_sol, *occ, *p_hvac; /* inputs per row (T in K) */
    double *measured; /* zone temperature per row (K), NAN where missing */
} Series;

typedef struct {
    double t_mid;
    double h_max;     /* largest RK4 sub-step: 1.5 x the fastest time constant (stable, accurate) */
    int in_step;
    double sse, sum_res;
    int n_fit;
} Zone;

static void release(FmioInstance *m) {
    Series *s = (Series *)m->persist;
    if (!s) return;
    free(s->t_out);
    free(s->i_sol);
    free(s->occ);
    free(s->p_hvac);
    free(s->measured);
    free(s);
    m->persist = NULL;
}

static FILE *open_resource(FmioInstance *m, const char *name) {
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s%s", m->resources ? m->resources : "", name);
    f = fopen(path, "r");
    if (!f) fmio_error(m, "Cannot open %s (resources location '%s').", path, m->resources ? m->resources : "");
    return f;
}

/* Read "time_s,T_out_C,I_sol_W_m2,occupancy,P_hvac_W" rows at a uniform time step. */
static int load_inputs(FmioInstance *m, Series *s) {
    char line[512];
    int cap = 0;
    double t0 = 0.0, t1 = 0.0;
    FILE *f = open_resource(m, "inputs.csv");
    if (!f) return 1;
    if (!fgets(line, sizeof line, f)) { fclose(f); fmio_error(m, "inputs.csv is empty."); return 1; }
    while (fgets(line, sizeof line, f)) {
        double t, to, is, oc, ph;
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf", &t, &to, &is, &oc, &ph) != 5) continue;
        if (s->n == cap) {
            cap = cap ? 2 * cap : 1024;
            s->t_out = (double *)realloc(s->t_out, cap * sizeof(double));
            s->i_sol = (double *)realloc(s->i_sol, cap * sizeof(double));
            s->occ = (double *)realloc(s->occ, cap * sizeof(double));
            s->p_hvac = (double *)realloc(s->p_hvac, cap * sizeof(double));
            if (!s->t_out || !s->i_sol || !s->occ || !s->p_hvac) { fclose(f); fmio_error(m, "Out of memory."); return 1; }
        }
        if (s->n == 0) t0 = t;
        if (s->n == 1) t1 = t;
        s->t_out[s->n] = to + ZERO_C;
        s->i_sol[s->n] = is;
        s->occ[s->n] = oc;
        s->p_hvac[s->n] = ph;
        s->n++;
    }
    fclose(f);
    if (s->n < 2 || t0 != 0.0 || t1 <= 0.0) {
        fmio_error(m, "inputs.csv needs >= 2 rows starting at time 0 (got %d rows).", s->n);
        return 1;
    }
    s->dt = t1 - t0;
    return 0;
}

/* Read "time_s,T_zone_C" rows; an empty temperature field is a gap. */
static int load_measured(FmioInstance *m, Series *s) {
    char line[256];
    int k;
    FILE *f = open_resource(m, "measured.csv");
    if (!f) return 1;
    s->measured = (double *)malloc(s->n * sizeof(double));
    if (!s->measured) { fclose(f); fmio_error(m, "Out of memory."); return 1; }
    for (k = 0; k < s->n; k++) s->measured[k] = NAN;
    if (!fgets(line, sizeof line, f)) { fclose(f); fmio_error(m, "measured.csv is empty."); return 1; }
    while (fgets(line, sizeof line, f)) {
        char *comma = strchr(line, ',');
        char *end;
        double t = strtod(line, NULL), v;
        long row = lround(t / s->dt);
        if (!comma || row < 0 || row >= s->n) continue;
        v = strtod(comma + 1, &end);
        if (end != comma + 1) s->measured[row] = v + ZERO_C;
    }
    fclose(f);
    return 0;
}

static const Series *series(FmioInstance *m) { return (const Series *)m->persist; }

/* Linear interpolation (weather) or zero-order hold (schedules and HVAC command) of row data. */
static double lerp(const Series *s, const double *col, double t) {
    double u = t / s->dt;
    int k = (int)floor(u);
    if (k < 0) return col[0];
    if (k >= s->n - 1) return col[s->n - 1];
    return col[k] + (u - k) * (col[k + 1] - col[k]);
}
static double hold(const Series *s, const double *col, double t) {
    int k = (int)floor(t / s->dt + 1e-9);
    if (k < 0) k = 0;
    if (k > s->n - 1) k = s->n - 1;
    return col[k];
}

typedef struct { double t_out, i_sol, occ, p_cmd, q_solar, q_int, q_hvac; } Drivers;

static Drivers drivers(FmioInstance *m, double t, double t_hold) {
    const Series *s = series(m);
    Drivers d;
    d.t_out = lerp(s, s->t_out, t);
    d.i_sol = lerp(s, s->i_sol, t);
    d.occ = hold(s, s->occ, t_hold);
    d.p_cmd = hold(s, s->p_hvac, t_hold);
    d.q_solar = R(A_sol) * d.i_sol;
    d.q_int = Q_BASE + Q_OCCUPANT_FULL * d.occ;
    d.q_hvac = R(eta_hvac) * d.p_cmd;
    return d;
}

static int initialize(FmioInstance *m) {
    Zone *z = DATA(Zone);
    if (R(R_wall) <= 0 || R(R_win) <= 0 || R(R_im) <= 0 || R(C_air) <= 0 || R(C_mass) <= 0 || R(ACH) < 0 ||
        R(A_sol) < 0 || R(eta_hvac) < 0 || R(V_zone) <= 0) {
        fmio_error(m, "Resistances, capacities and V_zone must be positive; ACH, A_sol, eta_hvac non-negative.");
        return 1;
    }
    if (!m->persist) {
        Series *s = (Series *)calloc(1, sizeof(Series));
        if (!s) return 1;
        m->persist = s;
        if (load_inputs(m, s) || load_measured(m, s)) {
            release(m);
            return 1;
        }
    }
    m->x[X_AIR] = R(T_init);
    m->x[X_MASS] = R(T_init);
    m->x[X_EHVAC] = 0.0;
    memset(z, 0, sizeof *z);
    {
        const double g_inf = RHO_CP_AIR * R(V_zone) * R(ACH) / 3600.0;
        const double tau_air = R(C_air) / (1.0 / R(R_im) + 1.0 / R(R_win) + g_inf);
        const double tau_mass = R(C_mass) / (1.0 / R(R_im) + 1.0 / R(R_wall));
        z->h_max = 1.5 * (tau_air < tau_mass ? tau_air : tau_mass);
    }
    return 0;
}

static int derivatives(FmioInstance *m, double t, const double *x, double *dx) {
    const Zone *z = DATA(Zone);
    const Drivers d = drivers(m, t, z->in_step ? z->t_mid : t);
    const double g_inf = RHO_CP_AIR * R(V_zone) * R(ACH) / 3600.0;
    const double q_im = (x[X_MASS] - x[X_AIR]) / R(R_im);
    dx[X_AIR] = (q_im + (d.t_out - x[X_AIR]) * (1.0 / R(R_win) + g_inf) + SOLAR_TO_AIR * d.q_solar + d.q_int +
                 d.q_hvac) / R(C_air);
    dx[X_MASS] = (-q_im + (d.t_out - x[X_MASS]) / R(R_wall) + (1.0 - SOLAR_TO_AIR) * d.q_solar) / R(C_mass);
    dx[X_EHVAC] = fabs(d.p_cmd);
    return 0;
}

/* RK4 over one step (never across a row boundary), split into sub-steps no longer than h_max. */
static int step(FmioInstance *m, double h) {
    Zone *z = DATA(Zone);
    const double t0 = m->time;
    const int n = (int)ceil(h / z->h_max);
    int k, rc = 0;
    z->t_mid = t0 + 0.5 * h; /* schedules and the HVAC command are held over the row */
    z->in_step = 1;
    for (k = 0; k < n && rc == 0; k++) {
        m->time = t0 + k * (h / n);
        rc = fmio_rk4_step(m, h / n);
    }
    m->time = t0;
    z->in_step = 0;
    return rc;
}

/* At every measurement instant after fit_start, accumulate the sensor residual. */
static int completed_step(FmioInstance *m) {
    Zone *z = DATA(Zone);
    const Series *s = series(m);
    double u = m->time / s->dt;
    long row = lround(u);
    if (fabs(u - row) < 1e-6 && row < s->n && m->time >= R(fit_start) && !isnan(s->measured[row])) {
        double res = m->x[X_AIR] + R(sensor_bias) - s->measured[row];
        z->sse += res * res;
        z->sum_res += res;
        z->n_fit++;
    }
    if (m->x[X_AIR] < 150.0 || m->x[X_AIR] > 400.0) {
        fmio_error(m, "Zone air temperature left the physical range (%g K at t = %g s).", m->x[X_AIR], m->time);
        return 1;
    }
    return 0;
}

static double next_event(FmioInstance *m, double t) {
    const Series *s = series(m);
    return (floor(t / s->dt + 1e-9) + 1.0) * s->dt; /* row boundaries: schedule steps */
}

static int outputs(FmioInstance *m) {
    const Zone *z = DATA(Zone);
    const Series *s = series(m);
    const Drivers d = drivers(m, m->time, m->time);
    double u = m->time / s->dt;
    long row = lround(u);
    R(T_air) = m->x[X_AIR];
    R(T_mass) = m->x[X_MASS];
    R(T_sensor) = m->x[X_AIR] + R(sensor_bias);
    R(T_out) = d.t_out;
    R(I_sol) = d.i_sol;
    R(occupancy) = d.occ;
    R(Q_hvac) = d.q_hvac;
    R(E_hvac) = m->x[X_EHVAC];
    B(measured_valid) = (fabs(u - row) < 1e-6 && row < s->n && !isnan(s->measured[row])) ? 1 : 0;
    R(T_measured) = B(measured_valid) ? s->measured[row] : R(T_sensor);
    R(residual) = R(T_sensor) - R(T_measured);
    I(n_fit) = z->n_fit;
    R(rmse) = z->n_fit > 0 ? sqrt(z->sse / z->n_fit) : 0.0;
    R(mean_residual) = z->n_fit > 0 ? z->sum_res / z->n_fit : 0.0;
    return 0;
}

const FmioModelDef MODEL = {
    N_X, 900.0, sizeof(Zone), initialize, derivatives, step, outputs, next_event, completed_step, release,
};
