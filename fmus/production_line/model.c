/* production_line - serial manufacturing line as a discrete-event simulation (physics only).
 * Five stations with random processing times, wear-out failures (Weibull busy-time to failure,
 * as good as new after repair), scrap, finite buffers with blocking after service, a pool of
 * repair crews and a maintenance policy. Every station draws each kind of random quantity (processing
 * time, time to failure, repair time, scrap) from its own stream seeded from `seed`, the station and the
 * kind, so that scenarios share common random numbers source by source: the n-th part a station
 * processes gets the same processing time and scrap draw under every policy and layout.
 * Equations and the bottleneck bound: fmus/README.md, section production_line. */
#include "fmio_runtime.h"
#include "model_vars.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define N_ST 5
#define MAX_BUF 64
#define MAX_REQ (2 * N_ST)
#define WEIBULL_SHAPE 3.0
#define GAMMA_1_PLUS_INV_SHAPE 0.892979511569249 /* Gamma(1 + 1/3) */

/* Station data: mean processing time (s), its CV, MTBF in busy hours, MTTR (s), scrap fraction. */
static const double P_MEAN[N_ST] = {52.0, 55.0, 58.0, 50.0, 54.0};
static const double P_CV[N_ST] = {0.30, 0.40, 0.25, 0.50, 0.30};
static const double MTBF_H[N_ST] = {6.0, 10.0, 5.0, 8.0, 12.0};
static const double MTTR_S[N_ST] = {1200.0, 1800.0, 900.0, 2400.0, 1500.0};
static const double SCRAP[N_ST] = {0.005, 0.010, 0.005, 0.020, 0.005};
#define OPPORTUNITY_AGE 0.5 /* opportunistic policy: maintain a starved station past this share of pm_interval */

enum { POLICY_RUN_TO_FAILURE = 1, POLICY_PREVENTIVE = 2, POLICY_OPPORTUNISTIC = 3 };
typedef enum { IDLE, BUSY, BLOCKED, DOWN_WAIT, REPAIR, PM_WAIT, PM } StState;

typedef struct { uint64_t s[4]; } Rng;
enum { RNG_PROCESS, RNG_FAILURE, RNG_REPAIR, RNG_SCRAP, N_RNG };

typedef struct {
    StState state;
    double t_event;     /* end of the current busy / repair / PM interval */
    double t_started;   /* start of the current busy interval */
    double p_left;      /* processing time left for the part on the station */
    double ttf;         /* busy time left until the next failure */
    double age;         /* busy time since the last renewal */
    double part_entry;  /* entry time of the part held */
    double down_since;
    int fails;          /* the pending BUSY event is a failure (decided when it is scheduled) */
    int holds_part;     /* an interrupted part waits on the station for the repair to end */
    Rng rng[N_RNG];
} Station;

typedef struct { double entry[MAX_BUF]; int head, count; } Buffer;
typedef struct { int station; double t; int is_pm; } Request;

typedef struct {
    Station st[N_ST];
    Buffer buf[N_ST - 1];
    Request req[MAX_REQ];
    int n_req;
    int crews_free;
    int cap[N_ST - 1];
    double t_last;             /* time of the last statistics update */
    double wip_area, busy_area_bn, down_time;  /* integrals since warm-up */
    double flow_sum;
    long good, scrap, started;
    int wip;
} Line;

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t next_u64(Rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}
static double uniform(Rng *r) { return ((next_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double normal(Rng *r) { return sqrt(-2.0 * log(uniform(r))) * cos(6.283185307179586 * uniform(r)); }
static double lognormal(Rng *r, double mean, double cv) {
    const double s2 = log(1.0 + cv * cv);
    return mean * exp(sqrt(s2) * normal(r) - 0.5 * s2);
}
static double weibull_ttf(Rng *r, double mean) {
    return mean / GAMMA_1_PLUS_INV_SHAPE * pow(-log(uniform(r)), 1.0 / WEIBULL_SHAPE);
}

/* ---- statistics ---- */
static void account(FmioInstance *m, Line *L, double t) {
    const double t0 = R(warmup);
    double a = L->t_last > t0 ? L->t_last : t0;
    int k;
    if (t > a) {
        double dt = t - a;
        L->wip_area += L->wip * dt;
        for (k = 0; k < N_ST; k++) {
            StState s = L->st[k].state;
            if (s == DOWN_WAIT || s == REPAIR || s == PM_WAIT || s == PM) L->down_time += dt;
        }
        if (L->st[2].state == BUSY) L->busy_area_bn += dt;
    }
    L->t_last = t;
}

/* ---- crews ---- */
static void request_crew(Line *L, int k, double t, int is_pm) {
    L->req[L->n_req].station = k;
    L->req[L->n_req].t = t;
    L->req[L->n_req].is_pm = is_pm;
    L->n_req++;
    L->st[k].state = is_pm ? PM_WAIT : DOWN_WAIT;
    L->st[k].down_since = t;
}

/* Crews take repairs before maintenance, each class in order of request. */
static int pick_request(const Line *L) {
    int best = -1, j;
    for (j = 0; j < L->n_req; j++) {
        const Request *r = &L->req[j], *b = best < 0 ? NULL : &L->req[best];
        if (!b || r->is_pm < b->is_pm || (r->is_pm == b->is_pm && r->t < b->t)) best = j;
    }
    return best;
}

static void dispatch_crews(FmioInstance *m, Line *L, double t) {
    (void)m;
    while (L->crews_free > 0 && L->n_req > 0) {
        int j = pick_request(L);
        Request r = L->req[j];
        Station *s = &L->st[r.station];
        L->req[j] = L->req[--L->n_req];
        L->crews_free--;
        if (r.is_pm) {
            s->state = PM;
            s->t_event = t + R(pm_duration);
        } else {
            s->state = REPAIR;
            s->t_event = t + lognormal(&s->rng[RNG_REPAIR], MTTR_S[r.station], 0.7);
        }
    }
}

/* ---- material flow ---- */
/* Schedule the end of a busy interval: the part finishes or the station fails first. Which one is
 * decided here and kept as a flag, not re-derived later from the remaining time, whose rounding grows
 * with the simulated time (an absolute tolerance fails past 2^24 s). */
static void schedule_busy(Station *s, double t) {
    s->state = BUSY;
    s->t_started = t;
    s->fails = s->ttf < s->p_left;
    s->t_event = t + (s->fails ? s->ttf : s->p_left);
}

static void start_part(Line *L, int k, double t, double entry) {
    Station *s = &L->st[k];
    s->part_entry = entry;
    s->p_left = lognormal(&s->rng[RNG_PROCESS], P_MEAN[k], P_CV[k]);
    schedule_busy(s, t);
}

static void renew(Station *s, int k) {
    s->age = 0.0;
    s->ttf = weibull_ttf(&s->rng[RNG_FAILURE], MTBF_H[k] * 3600.0);
}

/* Move parts wherever possible: blocked stations into buffers, idle stations take work. */
static void propagate(FmioInstance *m, Line *L, double t) {
    int changed = 1, k;
    while (changed) {
        changed = 0;
        for (k = N_ST - 1; k >= 0; k--) {
            Station *s = &L->st[k];
            if (s->state == BLOCKED && L->buf[k].count < L->cap[k]) {
                Buffer *b = &L->buf[k];
                b->entry[(b->head + b->count) % MAX_BUF] = s->part_entry;
                b->count++;
                s->state = IDLE;
                changed = 1;
            }
            if (s->state == IDLE) {
                const int starved = k > 0 && L->buf[k - 1].count == 0;
                if ((I(policy) != POLICY_RUN_TO_FAILURE && s->age >= R(pm_interval)) ||
                    (I(policy) == POLICY_OPPORTUNISTIC && starved && s->age >= OPPORTUNITY_AGE * R(pm_interval))) {
                    request_crew(L, k, t, 1);
                    changed = 1;
                } else if (k == 0) {
                    L->started++;
                    L->wip++;
                    start_part(L, 0, t, t);
                    changed = 1;
                } else if (L->buf[k - 1].count > 0) {
                    Buffer *b = &L->buf[k - 1];
                    double entry = b->entry[b->head];
                    b->head = (b->head + 1) % MAX_BUF;
                    b->count--;
                    start_part(L, k, t, entry);
                    changed = 1;
                }
            }
        }
        dispatch_crews(m, L, t);
    }
}

static void handle_event(FmioInstance *m, Line *L, int k, double t) {
    Station *s = &L->st[k];
    if (s->state == BUSY) {
        double worked = t - s->t_started;
        s->age += worked;
        if (s->fails) { /* failure interrupts the part; it resumes after repair */
            s->p_left -= worked;
            if (s->p_left < 0.0) s->p_left = 0.0;
            s->ttf = 0.0;
            s->holds_part = 1;
            request_crew(L, k, t, 0);
            propagate(m, L, t);
            return;
        }
        s->ttf -= worked; /* the part is finished */
        if (s->ttf < 0.0) s->ttf = 0.0;
        s->p_left = 0.0;
        if (uniform(&s->rng[RNG_SCRAP]) < SCRAP[k]) {
            L->wip--;
            if (t >= R(warmup)) L->scrap++;
            s->state = IDLE;
        } else if (k == N_ST - 1) {
            L->wip--;
            if (t >= R(warmup)) {
                L->good++;
                L->flow_sum += t - s->part_entry;
            }
            s->state = IDLE;
        } else {
            s->state = BLOCKED;
        }
    } else if (s->state == REPAIR || s->state == PM) {
        L->crews_free++;
        renew(s, k);
        if (s->holds_part && s->state == REPAIR) { /* resume the interrupted part */
            s->holds_part = 0;
            schedule_busy(s, t);
        } else {
            s->state = IDLE;
        }
    }
    propagate(m, L, t);
}

static int initialize(FmioInstance *m) {
    Line *L = DATA(Line);
    uint64_t seed = (uint64_t)(int64_t)I(seed);
    int k;
    int caps[N_ST - 1] = {I(buffer_1), I(buffer_2), I(buffer_3), I(buffer_4)};
    if (I(policy) < 1 || I(policy) > 3 || I(n_crews) < 1 || I(n_crews) > N_ST) {
        fmio_error(m, "policy=%d must be 1..3 and n_crews=%d 1..%d.", I(policy), I(n_crews), N_ST);
        return 1;
    }
    for (k = 0; k < N_ST - 1; k++) {
        if (caps[k] < 1 || caps[k] > MAX_BUF) {
            fmio_error(m, "buffer_%d=%d must be in 1..%d.", k + 1, caps[k], MAX_BUF);
            return 1;
        }
    }
    if (R(pm_interval) <= 0 || R(pm_duration) < 0 || R(warmup) < 0 || R(margin_per_part) < 0 || R(crew_cost) < 0 ||
        R(buffer_cost) < 0) {
        fmio_error(m, "pm_interval must be > 0; pm_duration, warmup, margin_per_part, crew_cost and buffer_cost >= 0.");
        return 1;
    }
    memset(L, 0, sizeof *L);
    for (k = 0; k < N_ST - 1; k++) L->cap[k] = caps[k];
    for (k = 0; k < N_ST; k++) {
        int j, src;
        for (src = 0; src < N_RNG; src++) {
            uint64_t sm = seed * 0x100000001B3ULL + (uint64_t)(N_RNG * k + src) * 0x9E3779B97F4A7C15ULL + 12345u;
            for (j = 0; j < 4; j++) L->st[k].rng[src].s[j] = splitmix(&sm);
        }
        L->st[k].state = IDLE;
        renew(&L->st[k], k);
    }
    L->crews_free = I(n_crews);
    L->t_last = m->time;
    propagate(m, L, m->time);
    return 0;
}

static int step(FmioInstance *m, double h) {
    Line *L = DATA(Line);
    const double t_end = m->time + h;
    long guard = 0;
    for (;;) {
        int k, next = -1;
        double tn = t_end;
        for (k = 0; k < N_ST; k++) {
            StState s = L->st[k].state;
            if ((s == BUSY || s == REPAIR || s == PM) && L->st[k].t_event <= tn) {
                tn = L->st[k].t_event;
                next = k;
            }
        }
        if (next < 0) break;
        account(m, L, tn);
        handle_event(m, L, next, tn);
        if (++guard > 100000000L) {
            fmio_error(m, "Event limit exceeded at t = %g s.", tn);
            return 1;
        }
    }
    account(m, L, t_end);
    return 0;
}

static int outputs(FmioInstance *m) {
    const Line *L = DATA(Line);
    const double span = m->time - R(warmup);
    const double ideal = P_MEAN[2];  /* ideal cycle of the bottleneck station, s */
    I(parts_good) = (int)L->good;
    I(parts_scrap) = (int)L->scrap;
    R(wip_now) = L->wip;
    const double fixed_cost = R(crew_cost) * I(n_crews) +
                              R(buffer_cost) * (I(buffer_1) + I(buffer_2) + I(buffer_3) + I(buffer_4));
    if (span <= 0) {
        R(throughput) = R(wip) = R(oee) = R(availability) = R(performance) = R(quality) = 0.0;
        R(cycle_time) = R(downtime) = 0.0;
        R(profit) = -fixed_cost;
        return 0;
    }
    R(throughput) = 3600.0 * L->good / span;
    R(profit) = R(margin_per_part) * R(throughput) - fixed_cost;
    R(wip) = L->wip_area / span;
    R(cycle_time) = L->good > 0 ? L->flow_sum / L->good / 60.0 : 0.0;
    R(downtime) = L->down_time / 3600.0;
    R(quality) = (L->good + L->scrap) > 0 ? (double)L->good / (double)(L->good + L->scrap) : 1.0;
    R(availability) = 1.0 - L->down_time / (N_ST * span);
    R(oee) = L->good * ideal / span;
    R(performance) = R(availability) * R(quality) > 0 ? R(oee) / (R(availability) * R(quality)) : 0.0;
    return 0;
}

const FmioModelDef MODEL = {
    0, 1.0e12, sizeof(Line), initialize, NULL, step, outputs, NULL, NULL, NULL,
};
