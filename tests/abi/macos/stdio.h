#pragma once
#include <stddef.h>
#include <stdarg.h>
typedef struct __sFILE FILE;
