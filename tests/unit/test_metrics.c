/* tests/unit/test_metrics.c — chatd/metrics.c: histograms, routes */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/http_parser.h"
#include "chatd/metrics.h"

static void
test_metrics_observe_fills_log_buckets(void **state)
{
	struct histogram h;

	(void)state;
	memset(&h, 0, sizeof h);
	metrics_observe(&h, 0);          /* le 100 us */
	metrics_observe(&h, 100);        /* le 100 us: bounds are inclusive */
	metrics_observe(&h, 101);        /* le 250 us */
	metrics_observe(&h, 1000000);    /* le 1 s */
	metrics_observe(&h, 99000000);   /* above 10 s: +Inf */
	metrics_observe(&h, -5);         /* a clock step back counts as 0 */
	assert_int_equal(h.buckets[0], 3);
	assert_int_equal(h.buckets[1], 1);
	assert_int_equal(h.buckets[12], 1);
	assert_int_equal(h.buckets[METRICS_BUCKETS], 1);
	assert_int_equal(h.count, 6);
	assert_int_equal(h.sum_us, 0 + 100 + 101 + 1000000 + 99000000);
}

static void
test_metrics_route_names_every_api_path(void **state)
{
	(void)state;
	assert_int_equal(metrics_route("/api/login"), ROUTE_LOGIN);
	assert_int_equal(metrics_route("/api/rooms"), ROUTE_ROOMS);
	assert_int_equal(metrics_route("/api/rooms/x/messages"),
	    ROUTE_MESSAGES);
	assert_int_equal(metrics_route("/api/search"), ROUTE_SEARCH);
	assert_int_equal(metrics_route("/api/nope"), ROUTE_API_OTHER);
	assert_int_equal(metrics_route("/ws"), ROUTE_WS);
	assert_int_equal(metrics_route("/metrics"), ROUTE_METRICS);
	assert_int_equal(metrics_route("/healthz"), ROUTE_HEALTHZ);
	assert_int_equal(metrics_route("/"), ROUTE_STATIC);
	assert_int_equal(metrics_route("/js/app.js"), ROUTE_STATIC);
	assert_int_equal(metrics_route("/api/loginx"), ROUTE_API_OTHER);
}

static void
test_metrics_http_counts_route_and_class(void **state)
{
	struct metrics m;
	struct http_request req;

	(void)state;
	memset(&m, 0, sizeof m);
	memset(&req, 0, sizeof req);
	req.path = "/api/me";
	metrics_http(&m, &req, 200);
	metrics_http(&m, &req, 401);
	metrics_http(&m, NULL, 431);
	assert_int_equal(m.http_route[ROUTE_ME][2], 1);
	assert_int_equal(m.http_route[ROUTE_ME][4], 1);
	assert_int_equal(m.http_route[ROUTE_NONE][4], 1);
	assert_int_equal(m.http_status[4], 2);
}

static void
test_metrics_txn_and_delivery_are_timed(void **state)
{
	struct metrics m;

	(void)state;
	memset(&m, 0, sizeof m);
	metrics_txn_begin(&m);
	metrics_txn_end(&m);
	metrics_delivered(&m);
	metrics_delivered(&m);
	assert_int_equal(m.txn_time.count, 1);
	assert_int_equal(m.delivery.count, 2);
	assert_true(m.commit_us >= m.txn_start_us);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_observe_fills_log_buckets),
		cmocka_unit_test(test_metrics_route_names_every_api_path),
		cmocka_unit_test(test_metrics_http_counts_route_and_class),
		cmocka_unit_test(test_metrics_txn_and_delivery_are_timed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
