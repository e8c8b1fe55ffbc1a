/*
 * dispatch.c - which SIMD path runs: detected once before main(), forced
 * by vl_simd_select() (the server's --simd flag).
 *
 * Decisions:
 *  - x86-64: a path needs both the CPUID feature bits and the OS saving the
 *    registers (XGETBV: XCR0 bits SSE|AVX for avx2, plus opmask|ZMM_Hi256|
 *    Hi16_ZMM for avx512); a CPU with AVX-512 under an OS or hypervisor that
 *    does not save ZMM state would fault on the first instruction.
 *  - "avx512" needs F/BW/VL/DQ.  VNNI (SQ8 kernels) and VPOPCNTDQ (1-bit
 *    kernels) are used when present; without them those slots take the
 *    AVX2 kernels, so Skylake-X class CPUs still get AVX-512 float32.
 *  - arm64: "neon" when HWCAP says ASIMD (every arm64 Linux CPU in
 *    practice).
 *  - The path in use is one pointer to a table, read with a relaxed atomic
 *    load (a plain load on both architectures); selection is meant to
 *    happen before searches start.
 */
#include <stdatomic.h>
#include <string.h>

#include "core/kernels/kernels.h"
#include "core/kernels/paths.h"
#include "util/error.h"

#ifdef VL_KERNELS_X86
#include <cpuid.h>
#endif
#ifdef VL_KERNELS_NEON
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#define VL_KERNEL_SET(sfx)                                                                         \
    {                                                                                              \
#sfx, vl_l2sq_##sfx, vl_dot_##sfx, vl_l2sq_batch_##sfx, vl_dot_batch_##sfx,                \
            vl_l2sq_u8_##sfx, vl_dot_s8_##sfx, vl_and_popcount_##sfx, vl_ip_bits_u4_##sfx,         \
            vl_lut4_scan_##sfx                                                                     \
    }

static const vl_kernel_set scalar_set = VL_KERNEL_SET(scalar);
#ifdef VL_KERNELS_X86
static const vl_kernel_set avx2_set = VL_KERNEL_SET(avx2);
static vl_kernel_set avx512_set = VL_KERNEL_SET(avx512); /* slots adjusted by detect() */
#endif
#ifdef VL_KERNELS_NEON
static const vl_kernel_set neon_set = VL_KERNEL_SET(neon);
#endif

static const vl_kernel_set *supported[VL_SIMD_NEON + 1]; /* NULL: not on this CPU */
static _Atomic(const vl_kernel_set *) current = &scalar_set;

#ifdef VL_KERNELS_X86
static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    int popcnt = (c >> 23) & 1;
    if (!osxsave || !avx || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return;
    uint64_t xcr = xcr0();
    int ymm_os = (xcr & 0x6) == 0x6, zmm_os = (xcr & 0xe6) == 0xe6;
    int avx2 = (b >> 5) & 1;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1, vpopcntdq = (c >> 14) & 1;
    if (!(ymm_os && avx2 && fma && popcnt))
        return;
    supported[VL_SIMD_AVX2] = &avx2_set;
    if (!(zmm_os && f && dq && bw && vl))
        return;
    if (!vnni) {
        avx512_set.l2sq_u8 = vl_l2sq_u8_avx2;
        avx512_set.dot_s8 = vl_dot_s8_avx2;
    }
    if (!vpopcntdq) {
        avx512_set.and_popcount = vl_and_popcount_avx2;
        avx512_set.ip_bits_u4 = vl_ip_bits_u4_avx2;
    }
    supported[VL_SIMD_AVX512] = &avx512_set;
}
#endif

__attribute__((constructor)) static void detect(void)
{
    supported[VL_SIMD_SCALAR] = &scalar_set;
#ifdef VL_KERNELS_X86
    detect_x86();
#endif
#ifdef VL_KERNELS_NEON
    if (getauxval(AT_HWCAP) & HWCAP_ASIMD)
        supported[VL_SIMD_NEON] = &neon_set;
#endif
    atomic_store_explicit(&current, vl_kernels_for(VL_SIMD_AUTO), memory_order_relaxed);
}

const vl_kernel_set *vl_kernels(void)
{
    return atomic_load_explicit(&current, memory_order_relaxed);
}

const vl_kernel_set *vl_kernels_for(vl_simd p)
{
    if (p == VL_SIMD_AUTO) {
        static const vl_simd best[] = {VL_SIMD_AVX512, VL_SIMD_AVX2, VL_SIMD_NEON};
        for (size_t i = 0; i < sizeof best / sizeof best[0]; i++)
            if (supported[best[i]])
                return supported[best[i]];
        return &scalar_set;
    }
    return (unsigned)p <= VL_SIMD_NEON ? supported[p] : NULL;
}

static const char *const simd_names[] = {"auto", "scalar", "avx2", "avx512", "neon"};

vl_status vl_simd_parse(const char *name, vl_simd *out)
{
    for (size_t i = 0; i < sizeof simd_names / sizeof simd_names[0]; i++)
        if (strcmp(name, simd_names[i]) == 0) {
            *out = (vl_simd)i;
            return VL_OK;
        }
    return VL_ERR_ARG;
}

int vl_simd_supported(vl_simd p)
{
    return vl_kernels_for(p) != NULL;
}

static const char *needs(vl_simd p)
{
    switch (p) {
    case VL_SIMD_AVX2: return "x86-64 with AVX2, FMA and POPCNT and OS-enabled YMM state";
    case VL_SIMD_AVX512: return "x86-64 with AVX-512 F/BW/VL/DQ and OS-enabled ZMM state";
    case VL_SIMD_NEON: return "arm64 with Advanced SIMD";
    default: return "nothing";
    }
}

vl_status vl_simd_select(vl_simd p, vl_error *err)
{
    const vl_kernel_set *k = vl_kernels_for(p);
    if (!k) {
        char have[64] = "";
        for (int i = VL_SIMD_NEON; i >= VL_SIMD_SCALAR; i--)
            if (supported[i]) {
                strcat(have, " ");
                strcat(have, simd_names[i]);
            }
        return vl_fail(err, VL_ERR_ARG,
                       "this CPU cannot run simd path '%s' (needs %s); it can run:%s",
                       (unsigned)p <= VL_SIMD_NEON ? simd_names[p] : "?", needs(p), have);
    }
    atomic_store_explicit(&current, k, memory_order_relaxed);
    return VL_OK;
}

const char *vl_simd_name(void)
{
    return vl_kernels()->name;
}
