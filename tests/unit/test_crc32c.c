/* test_crc32c.c - CRC-32C check values, chaining, portable vs hardware. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "storage/crc32c.h"

static void test_check_value(void **state)
{
    (void)state;
    assert_int_equal(vl_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(vl_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(vl_crc32c(0, "", 0), 0);
    assert_int_equal(vl_crc32c(0, NULL, 0), 0);
}

/* Vectors from RFC 3720 (iSCSI), appendix B.4. */
static void test_rfc3720_vectors(void **state)
{
    (void)state;
    unsigned char buf[32];
    memset(buf, 0, sizeof buf);
    assert_int_equal(vl_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    assert_int_equal(vl_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(vl_crc32c(0, buf, 32), 0x46DD794Eu);
    assert_int_equal(vl_crc32c_portable(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(vl_crc32c(0, buf, 32), 0x113FDB5Cu);
}

static void fill_random(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static void test_chaining(void **state)
{
    (void)state;
    unsigned char buf[300];
    fill_random(buf, sizeof buf, 7);
    uint32_t whole = vl_crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++) {
        assert_int_equal(vl_crc32c(vl_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
        assert_int_equal(
            vl_crc32c_portable(vl_crc32c_portable(0, buf, cut), buf + cut, sizeof buf - cut),
            whole);
    }
    /* Mixing the two implementations mid-stream must not matter either. */
    assert_int_equal(vl_crc32c_portable(vl_crc32c(0, buf, 13), buf + 13, sizeof buf - 13), whole);
}

static void test_portable_equals_dispatch(void **state)
{
    (void)state;
    enum { MAXLEN = 1100 };
    unsigned char *buf = malloc(MAXLEN + 16);
    assert_non_null(buf);
    for (unsigned seed = 1; seed <= 4; seed++) {
        fill_random(buf, MAXLEN + 16, seed);
        for (size_t align = 0; align < 16; align++) {
            for (size_t len = 0; len <= MAXLEN; len += (len < 70 ? 1 : 37)) {
                uint32_t init = seed & 1 ? 0 : 0xDEADBEEFu;
                assert_int_equal(vl_crc32c(init, buf + align, len),
                                 vl_crc32c_portable(init, buf + align, len));
            }
        }
    }
    free(buf);
}

/* Buffers long enough for the hardware path's three-lane blocks (12 KiB
 * each), at odd lengths and offsets, split anywhere. */
static void test_long_buffers_equal_portable(void **state)
{
    (void)state;
    enum { MAXLEN = 100000 };
    unsigned char *buf = malloc(MAXLEN + 16);
    assert_non_null(buf);
    fill_random(buf, MAXLEN + 16, 9);
    for (size_t align = 0; align < 16; align += 5)
        for (size_t len = 12000; len <= MAXLEN; len += 4099) {
            uint32_t init = len & 1 ? 0 : 0x12345678u;
            uint32_t want = vl_crc32c_portable(init, buf + align, len);
            assert_int_equal(vl_crc32c(init, buf + align, len), want);
            size_t cut = len / 3 + align;
            assert_int_equal(
                vl_crc32c(vl_crc32c(init, buf + align, cut), buf + align + cut, len - cut), want);
        }
    free(buf);
}

static void test_detects_single_bit_flips(void **state)
{
    (void)state;
    unsigned char buf[64];
    fill_random(buf, sizeof buf, 3);
    uint32_t orig = vl_crc32c(0, buf, sizeof buf);
    for (size_t bit = 0; bit < sizeof buf * 8; bit++) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_int_not_equal(vl_crc32c(0, buf, sizeof buf), orig);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_rfc3720_vectors),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_portable_equals_dispatch),
        cmocka_unit_test(test_long_buffers_equal_portable),
        cmocka_unit_test(test_detects_single_bit_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
