/* servo_pid - DC-motor position servo with a PID controller (physics only).
 * Shared by the FMI 2.0 package (servo_pid) and the FMI 3.0 package (servo_pid_fmi3).
 * Equations: fmus/README.md, section servo_pid. */
#include "fmio_runtime.h"
#include "model_vars.h"

#include <math.h>

enum { X_THETA, X_OMEGA, X_CURRENT, X_INT, X_FILT, X_ITAE, X_ENERGY, N_X };

typedef struct {
    double overshoot;
    double t_track; /* anti-windup tracking time in use (s) */
    double t_mid;  /* midpoint of the current CS step: the step inputs are held over it */
    int in_step;
} Servo;

#define OMEGA_STICK 0.05 /* rad/s: width of the smoothed Coulomb friction */

static double setpoint(FmioInstance *m, double t) { return t >= R(t_step) ? R(theta_ref) : 0.0; }
static double disturbance(FmioInstance *m, double t) { return t >= R(t_disturbance) ? R(T_disturbance) : 0.0; }

typedef struct { double r, e, u, u_sat, torque_load; } Signals;

/* Controller output for states x at time t: P on weighted set point, I with back-calculation,
 * D on the measurement through a first-order filter. */
static Signals signals(FmioInstance *m, double t, const double *x) {
    const Servo *d = DATA(Servo);
    const double t_inputs = d->in_step ? d->t_mid : t; /* CS steps never straddle t_step / t_disturbance */
    Signals s;
    const double y = x[X_THETA];
    const double d_term = R(Kd) * (-y - x[X_FILT]) / R(Tf);
    s.r = setpoint(m, t_inputs);
    s.e = s.r - y;
    s.u = R(Kp) * (R(b_sp) * s.r - y) + x[X_INT] + d_term;
    s.u_sat = s.u > R(V_max) ? R(V_max) : (s.u < -R(V_max) ? -R(V_max) : s.u);
    s.torque_load = disturbance(m, t_inputs);
    return s;
}

/* Back-calculation tracking time. The integrator must be reset faster than it winds up (Tt < Ti) but not
 * faster than the derivative action acts (Tt > Td), else it fights the D term: Astrom and Hagglund,
 * Advanced PID Control (ISA 2006), sec. 3.5, suggest Tt = sqrt(Ti Td). With Td = 0 (PI) Tt = Ti. The
 * floor of 1 ms (5 RK4 steps) keeps the reset rate resolved by the fixed-step integrator. A positive
 * parameter T_t overrides the rule. */
static double tracking_time(FmioInstance *m) {
    const double floor_t = 1.0e-3;
    double ti, tt;
    if (R(T_t) > 0.0) return R(T_t);
    if (R(Ki) <= 0.0 || R(Kp) <= 0.0) return floor_t; /* no integrator, or a pure I controller */
    ti = R(Kp) / R(Ki);
    tt = R(Kd) > 0.0 ? sqrt(ti * R(Kd) / R(Kp)) : ti;
    if (tt > ti) tt = ti;
    return tt < floor_t ? floor_t : tt;
}

static int initialize(FmioInstance *m) {
    Servo *d = DATA(Servo);
    if (R(J_motor) + R(J_load) <= 0 || R(R_a) <= 0 || R(L_a) <= 0 || R(K_m) <= 0 || R(Tf) <= 0 || R(T_t) < 0 ||
        R(V_max) <= 0) {
        fmio_error(m, "Inertia, R_a, L_a, K_m, Tf and V_max must be positive, T_t >= 0 (0: automatic).");
        return 1;
    }
    if (R(Kp) < 0 || R(Ki) < 0 || R(Kd) < 0 || R(b_sp) < 0 || R(b_sp) > 1) {
        fmio_error(m, "Gains must be non-negative and b_sp in [0, 1] (Kp=%g Ki=%g Kd=%g b_sp=%g).", R(Kp), R(Ki),
                   R(Kd), R(b_sp));
        return 1;
    }
    d->t_track = tracking_time(m);
    m->x[X_THETA] = R(theta);
    m->x[X_OMEGA] = R(omega);
    m->x[X_CURRENT] = R(current);
    m->x[X_INT] = R(int_state);
    m->x[X_FILT] = -R(theta); /* derivative filter starts in equilibrium */
    m->x[X_ITAE] = 0.0;
    m->x[X_ENERGY] = 0.0;
    d->overshoot = 0.0;
    return 0;
}

static int derivatives(FmioInstance *m, double t, const double *x, double *dx) {
    const Signals s = signals(m, t, x);
    const double w = x[X_OMEGA], i = x[X_CURRENT];
    const double friction = R(T_coulomb) * tanh(w / OMEGA_STICK) + R(b_visc) * w;
    dx[X_THETA] = w;
    dx[X_OMEGA] = (R(K_m) * i - friction - s.torque_load) / (R(J_motor) + R(J_load));
    dx[X_CURRENT] = (s.u_sat - R(R_a) * i - R(K_m) * w) / R(L_a);
    /* back-calculation anti-windup; without integral action there is nothing to wind up */
    dx[X_INT] = R(Ki) > 0.0 ? R(Ki) * s.e + (s.u_sat - s.u) / DATA(Servo)->t_track : 0.0;
    dx[X_FILT] = (-x[X_THETA] - x[X_FILT]) / R(Tf);
    /* ITAE of each test segment, timed from its own event (set-point step, then load step): a single
     * clock from t_step would weight every error after the load step 10-20 times more than the
     * set-point response. Both segments are position errors in rad, so they add with equal weight. */
    {
        const double t_in = DATA(Servo)->in_step ? DATA(Servo)->t_mid : t;
        const double t0 = t_in >= R(t_disturbance) && R(t_disturbance) > R(t_step) ? R(t_disturbance) : R(t_step);
        dx[X_ITAE] = t >= R(t_step) ? (t - t0) * fabs(s.e) : 0.0;
    }
    dx[X_ENERGY] = fabs(s.u_sat * i);
    return 0;
}

/* One RK4 step with the piecewise-constant inputs of this step (not of the next one at its end). */
static int step(FmioInstance *m, double h) {
    Servo *d = DATA(Servo);
    int rc;
    d->t_mid = m->time + 0.5 * h;
    d->in_step = 1;
    rc = fmio_rk4_step(m, h);
    d->in_step = 0;
    return rc;
}

static double next_event(FmioInstance *m, double t) {
    double te = HUGE_VAL;
    if (R(t_step) > t + 1e-12) te = R(t_step);
    if (R(t_disturbance) > t + 1e-12 && R(t_disturbance) < te) te = R(t_disturbance);
    return te;
}

/* Overshoot of the set-point step: highest (theta - ref) / ref before the disturbance arrives. */
static int completed_step(FmioInstance *m) {
    Servo *d = DATA(Servo);
    if (m->time >= R(t_step) && m->time <= R(t_disturbance) && fabs(R(theta_ref)) > 0) {
        double os = (m->x[X_THETA] - R(theta_ref)) / R(theta_ref);
        if (os > d->overshoot) d->overshoot = os;
    }
    if (fabs(m->x[X_THETA]) > 1e4) {
        fmio_error(m, "Position ran away (|theta| = %g rad at t = %g s).", fabs(m->x[X_THETA]), m->time);
        return 1;
    }
    return 0;
}

static int outputs(FmioInstance *m) {
    const Servo *d = DATA(Servo);
    const double *x = m->x;
    const Signals s = signals(m, m->time, x);
    double dx[N_X];
    derivatives(m, m->time, x, dx);
    R(theta) = x[X_THETA];
    R(omega) = x[X_OMEGA];
    R(current) = x[X_CURRENT];
    R(int_state) = x[X_INT];
    R(filt_state) = x[X_FILT];
    R(ITAE) = x[X_ITAE];
    R(E_elec) = x[X_ENERGY];
    R(der_theta) = dx[X_THETA];
    R(der_omega) = dx[X_OMEGA];
    R(der_current) = dx[X_CURRENT];
    R(der_int_state) = dx[X_INT];
    R(der_filt_state) = dx[X_FILT];
    R(der_ITAE) = dx[X_ITAE];
    R(der_E_elec) = dx[X_ENERGY];
    R(setpoint) = s.r;
    R(error) = s.e;
    R(u) = s.u_sat;
    R(u_unsaturated) = s.u;
    R(load_torque) = s.torque_load;
    R(overshoot) = d->overshoot;
    return 0;
}

const FmioModelDef MODEL = {
    N_X, 2.0e-4, sizeof(Servo), initialize, derivatives, step, outputs, next_event, completed_step, NULL,
};
