/* The write-back test model whose output depends on the importer: y adds 0.01 when fmi2SetupExperiment
 * leaves the stop time undefined (libcosim does, fmpy does not), so fmpy and libcosim disagree on this FMU
 * while a written copy of it agrees with the original in each importer. */
#define IMPORTER_DEPENDENT
#include "../writeback_model/wbmodel.c"
