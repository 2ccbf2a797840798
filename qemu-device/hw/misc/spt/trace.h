#include "trace/trace-hw_misc_spt.h"
