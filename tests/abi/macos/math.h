#pragma once
#ifdef __cplusplus
extern "C" {
#endif
float sqrtf(float); float fabsf(float); float powf(float, float); float floorf(float);
float ceilf(float); float roundf(float); float fminf(float, float); float fmaxf(float, float);
float sinf(float); float cosf(float); float tanf(float); float acosf(float); float asinf(float);
float atan2f(float, float); float atanf(float); float expf(float); float logf(float);
float fmodf(float, float);
double sqrt(double); double fabs(double); double pow(double, double); double floor(double);
double ceil(double); double round(double); double sin(double); double cos(double);
double tan(double); double acos(double); double asin(double); double atan(double);
double atan2(double, double); double exp(double); double log(double); double log10(double);
double fmod(double, double);
#ifdef __cplusplus
}
#endif
