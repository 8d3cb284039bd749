/* heat_sink - forced-air plate-fin heat sink cooling a power module (physics only).
 * Equations and sources of the correlations: fmus/README.md, section heat_sink. */
#include "fmio_runtime.h"
#include "model_vars.h"

#include <math.h>

#define FMIO_PI 3.14159265358979323846

typedef struct { double k, rho, c, usd_per_kg; } Material;
typedef struct { double p0, q0, power, usd, kg; } Fan;

static const Material MATERIALS[4] = {
    {222.0, 2705.0, 900.0, 4.2},  /* Al1050 */
    {201.0, 2700.0, 900.0, 2.9},  /* Al6063 */
    {167.0, 2700.0, 896.0, 3.3},  /* Al6061 */
    {388.0, 8940.0, 385.0, 11.0}, /* CuC110 */
};
static const Fan FANS[4] = {
    {60.0, 0.012, 1.5, 4.0, 0.04},
    {75.0, 0.022, 2.5, 6.0, 0.07},
    {150.0, 0.030, 6.0, 11.0, 0.10},
    {400.0, 0.012, 7.0, 14.0, 0.12},
};
static const double TIM_R_AREA[3] = {1.0e-4, 2.0e-5, 1.0e-5}; /* m2 K/W */
static const double TIM_USD[3] = {0.2, 0.5, 1.5};

#define A_SOURCE 1.6e-3  /* module footprint, 40 mm x 40 mm */
#define R_JC 0.12        /* junction-to-case, K/W */
#define C_JUNCTION 3.0   /* die + DBC, J/K */
#define C_CASE 60.0      /* module base plate, J/K */
#define DUCT_KG 0.03
#define DUCT_USD 1.2
#define BYPASS_AREA 2.0e-3 /* free area around an unducted sink, m2 */

enum { X_TJ, X_TC, X_TB, X_TF, X_EIN, X_ECONV, X_EFAN, N_X };

typedef struct {
    double cj, cc, cb, cf;      /* heat capacities, J/K */
    double r_jc, r_cb, r_bf;    /* resistances, K/W */
    double g_fin, g_base;       /* convective conductances, W/K */
    double mcp;                 /* air capacity rate through the fins, W/K */
    double p_fan;
    double tj_max;
    double t_mid;               /* midpoint of the current CS step: the load is piecewise constant */
    int in_step;
} HeatSink;

static double load(FmioInstance *m, double t) {
    if ((t >= 60.0 && t < 180.0) || (t >= 420.0 && t < 540.0)) return R(P_peak);
    if (t >= 300.0 && t < 330.0) return 1.25 * R(P_peak);
    return R(P_idle);
}

static double next_event(FmioInstance *m, double t) {
    static const double edges[] = {60.0, 180.0, 300.0, 330.0, 420.0, 540.0};
    size_t k;
    (void)m;
    for (k = 0; k < sizeof edges / sizeof edges[0]; k++)
        if (edges[k] > t + 1e-9) return edges[k];
    return HUGE_VAL;
}

/* Channel velocity for a pressure drop: dp = a v + c v^2 (laminar friction + minor losses). */
static double channel_velocity(double dp, double a, double c) {
    return (-a + sqrt(a * a + 4.0 * c * dp)) / (2.0 * c);
}

/* Convective conductance from the base (fins + exposed base, then air heating in series). */
static double base_conductance(const HeatSink *d) {
    double g_fins = 1.0 / (d->r_bf + 1.0 / d->g_fin);
    return 1.0 / (1.0 / (g_fins + d->g_base) + 1.0 / (2.0 * d->mcp));
}

static int initialize(FmioInstance *m) {
    HeatSink *d = DATA(HeatSink);
    const double W = R(base_width), L = R(base_length), H = R(fin_height), t = R(fin_thickness);
    const double tb = R(base_thickness), Ta = R(T_ambient);
    const int n = I(n_fins);
    const int mat = I(material) - 1, fan = I(fan_model) - 1, tim = I(tim) - 1;
    double rho_air, mu, nu, k_air, pr, cp_air = 1007.0, b, dh, alpha, fre, sigma, K, a, c, kb;
    double ratio, dp_lo, dp_hi, dp = 0.0, v = 0.0, qf = 0.0, qb = 0.0, re_star, nu_b, h, mfin, hc, eta;
    double area_fin, area_base, ms, eps, tau, bp, as, bi, lam, phi, psi, r_sp;
    int it;

    if (mat < 0 || mat > 3 || fan < 0 || fan > 3 || tim < 0 || tim > 2) {
        fmio_error(m, "Enumeration out of range: material=%d fan_model=%d tim=%d.", mat + 1, fan + 1, tim + 1);
        return 1;
    }
    if (n < 2 || I(fan_speed) < 1 || I(fan_speed) > 4) {
        fmio_error(m, "n_fins=%d must be >= 2 and fan_speed=%d in 1..4.", n, I(fan_speed));
        return 1;
    }
    if (!(R(fan_duty) >= 0.2 && R(fan_duty) <= 1.0)) {
        fmio_error(m, "fan_duty=%g must be in [0.2, 1] (PWM fans stall below about 20 %% duty).", R(fan_duty));
        return 1;
    }
    if (H <= 0 || t <= 0 || tb <= 0 || W <= 0 || L <= 0 || Ta <= 0) {
        fmio_error(m, "Geometry and T_ambient must be positive.");
        return 1;
    }
    b = (W - n * t) / (n - 1); /* gap between fins */
    if (b <= 2.0e-4) {
        fmio_error(m, "Fins do not fit: %d fins of %g m leave a gap of %g m on a %g m base.", n, t, b, W);
        return 1;
    }
    /* air at the inlet temperature */
    rho_air = 101325.0 / (287.05 * Ta);
    mu = 1.716e-5 * pow(Ta / 273.15, 1.5) * (273.15 + 110.4) / (Ta + 110.4);
    nu = mu / rho_air;
    k_air = 0.0241 * pow(Ta / 273.15, 0.81);
    pr = mu * cp_air / k_air;

    /* channel hydraulics (Shah & London rectangular duct, Kays & London contraction/expansion) */
    dh = 2.0 * b * H / (b + H);
    alpha = b < H ? b / H : H / b;
    fre = 96.0 * (1 - 1.3553 * alpha + 1.9467 * alpha * alpha - 1.7012 * pow(alpha, 3) + 0.9564 * pow(alpha, 4) -
                  0.2537 * pow(alpha, 5));
    sigma = (n - 1) * b / W;
    K = 0.42 * (1 - sigma * sigma) + (1 - sigma * sigma) * (1 - sigma * sigma) + 0.674;
    a = fre * mu * L / (2.0 * dh * dh);
    c = K * rho_air / 2.0;
    kb = rho_air / (2.0 * pow(0.6 * BYPASS_AREA, 2));

    /* fan operating point: fan curve dp = p0 r^2 (1 - (Q / (q0 r))^2) against fins (+ bypass) */
    /* Speed steps 1..4 run the fan at 55, 70, 85 and 100 % of its rated speed: never above its rating
     * (the fan curve p0, q0 and power P0 are the datasheet values at rated speed). PWM scales it further. */
    ratio = (0.40 + 0.15 * I(fan_speed)) * R(fan_duty);
    dp_lo = 0.0;
    dp_hi = FANS[fan].p0 * ratio * ratio;
    for (it = 0; it < 80; it++) {
        double q_fan;
        dp = 0.5 * (dp_lo + dp_hi);
        v = channel_velocity(dp, a, c);
        qf = v * (n - 1) * b * H;
        qb = B(duct) ? 0.0 : sqrt(dp / kb);
        q_fan = FANS[fan].q0 * ratio * sqrt(1.0 - dp / (FANS[fan].p0 * ratio * ratio));
        if (qf + qb > q_fan) dp_hi = dp; else dp_lo = dp;
    }
    if (!(qf > 0.0) || !isfinite(qf)) {
        fmio_error(m, "No fan operating point found (flow %g m3/s).", qf);
        return 1;
    }

    /* heat transfer: Teertstra-Yovanovich-Culham composite model for plate-fin channels */
    re_star = v * b / nu * (b / L);
    nu_b = pow(pow(re_star * pr / 2.0, -3.0) +
                   pow(0.664 * sqrt(re_star) * pow(pr, 1.0 / 3.0) * sqrt(1.0 + 3.65 / sqrt(re_star)), -3.0),
               -1.0 / 3.0);
    h = nu_b * k_air / b;
    mfin = sqrt(2.0 * h / (MATERIALS[mat].k * t));
    hc = H + t / 2.0;
    eta = tanh(mfin * hc) / (mfin * hc);
    area_fin = n * (2.0 * H + t) * L;
    area_base = (n - 1) * b * L;

    d->g_fin = h * area_fin;
    d->g_base = h * area_base;
    d->r_bf = (1.0 - eta) / (eta * h * area_fin);
    d->mcp = rho_air * qf * cp_air;

    /* spreading + conduction resistance of the base (Lee, Song, Au & Moran 1995) */
    as = sqrt(A_SOURCE / FMIO_PI);
    bp = sqrt(W * L / FMIO_PI);
    eps = as / bp;
    tau = tb / bp;
    bi = 1.0 / (FMIO_PI * MATERIALS[mat].k * bp * (1.0 / base_conductance(d)));
    lam = FMIO_PI + 1.0 / (sqrt(FMIO_PI) * eps);
    phi = (tanh(lam * tau) + lam / bi) / (1.0 + lam / bi * tanh(lam * tau));
    psi = eps * tau / sqrt(FMIO_PI) + (1.0 - eps) * phi / sqrt(FMIO_PI);
    r_sp = psi / (MATERIALS[mat].k * as * sqrt(FMIO_PI));
    d->r_jc = R_JC;
    d->r_cb = TIM_R_AREA[tim] / A_SOURCE + r_sp;

    ms = MATERIALS[mat].rho * (W * L * tb + n * t * H * L);
    d->cj = C_JUNCTION;
    d->cc = C_CASE;
    d->cb = MATERIALS[mat].rho * MATERIALS[mat].c * W * L * tb;
    d->cf = MATERIALS[mat].rho * MATERIALS[mat].c * n * t * H * L;
    d->p_fan = FANS[fan].power * ratio * ratio * ratio;

    R(mass) = ms + FANS[fan].kg + (B(duct) ? DUCT_KG : 0.0);
    /* extrusion die limit: fin height over the gap between fins (the die tongue's aspect ratio) */
    R(fin_aspect_ratio) = H / b;
    R(cost) = ms * MATERIALS[mat].usd_per_kg + 1.0 + 0.06 * n + FANS[fan].usd + TIM_USD[tim] +
              (B(duct) ? DUCT_USD : 0.0);
    R(P_fan) = d->p_fan;
    R(dp) = dp;
    R(V_flow) = qf;
    R(V_bypass) = qb;
    R(v_channel) = v;
    R(h_conv) = h;
    R(fin_efficiency) = eta;
    R(R_sink) = d->r_cb - TIM_R_AREA[tim] / A_SOURCE + 1.0 / base_conductance(d);

    m->x[X_TJ] = m->x[X_TC] = m->x[X_TB] = m->x[X_TF] = Ta;
    m->x[X_EIN] = m->x[X_ECONV] = m->x[X_EFAN] = 0.0;
    d->tj_max = Ta;
    return 0;
}

/* Convective heat to the air with the air's mean temperature rise solved implicitly. */
static double convected(const HeatSink *d, double ta, double tb, double tf) {
    return (d->g_fin * (tf - ta) + d->g_base * (tb - ta)) / (1.0 + (d->g_fin + d->g_base) / (2.0 * d->mcp));
}

static int derivatives(FmioInstance *m, double t, const double *x, double *dx) {
    const HeatSink *d = DATA(HeatSink);
    const double ta = R(T_ambient);
    const double q_in = load(m, d->in_step ? d->t_mid : t);
    const double q_jc = (x[X_TJ] - x[X_TC]) / d->r_jc;
    const double q_cb = (x[X_TC] - x[X_TB]) / d->r_cb;
    const double q_bf = (x[X_TB] - x[X_TF]) / d->r_bf;
    const double q_conv = convected(d, ta, x[X_TB], x[X_TF]);
    /* split of the convected heat between fins and exposed base (same mean air temperature) */
    const double t_air = ta + q_conv / (2.0 * d->mcp);
    const double q_base_air = d->g_base * (x[X_TB] - t_air);
    const double q_fin_air = d->g_fin * (x[X_TF] - t_air);
    dx[X_TJ] = (q_in - q_jc) / d->cj;
    dx[X_TC] = (q_jc - q_cb) / d->cc;
    dx[X_TB] = (q_cb - q_bf - q_base_air) / d->cb;
    dx[X_TF] = (q_bf - q_fin_air) / d->cf;
    dx[X_EIN] = q_in;
    dx[X_ECONV] = q_conv;
    dx[X_EFAN] = d->p_fan;
    return 0;
}


static int step(FmioInstance *m, double h) {
    HeatSink *d = DATA(HeatSink);
    int rc;
    d->t_mid = m->time + 0.5 * h; /* steps never straddle a load edge (next_event) */
    d->in_step = 1;
    rc = fmio_rk4_step(m, h);
    d->in_step = 0;
    if (rc != 0) return 1;
    if (m->x[X_TJ] > d->tj_max) d->tj_max = m->x[X_TJ];
    return 0;
}

static int outputs(FmioInstance *m) {
    const HeatSink *d = DATA(HeatSink);
    const double *x = m->x;
    const double ta = R(T_ambient);
    R(T_junction) = x[X_TJ];
    R(T_case) = x[X_TC];
    R(T_base) = x[X_TB];
    R(T_fin) = x[X_TF];
    R(T_junction_max) = d->tj_max;
    R(P_loss) = load(m, m->time);
    R(Q_conv) = convected(d, ta, x[X_TB], x[X_TF]);
    R(E_in) = x[X_EIN];
    R(E_conv) = x[X_ECONV];
    R(E_fan) = x[X_EFAN];
    R(E_stored) = d->cj * (x[X_TJ] - ta) + d->cc * (x[X_TC] - ta) + d->cb * (x[X_TB] - ta) + d->cf * (x[X_TF] - ta);
    return 0;
}

const FmioModelDef MODEL = {
    N_X, 0.25, sizeof(HeatSink), initialize, derivatives, step, outputs, next_event,
};
