/* Stub of Apple's <simd/base.h>: OBS 32's util/sse-intrin.h includes it on __APPLE__ before
   SIMDe; nothing in it bears on the layouts or signatures this test checks. */
#pragma once
