#pragma once
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
size_t wcslen(const wchar_t *);
int wcscmp(const wchar_t *, const wchar_t *);
#ifdef __cplusplus
}
#endif
