-- The lifecycle clock under extreme and rolled-back travel: a travel that
-- would leave the clock where timers cannot be computed is refused with
-- 22023 (not 22008 later, in every call), and a travel rolled back to a
-- savepoint does not linger for the rest of the transaction.
CREATE TEMP TABLE cmp_clock AS SELECT lifecycle_now() - now() AS offset_before;
SELECT lifecycle_travel('178000000 years');
SELECT lifecycle_travel('-178000000 years');
SELECT lifecycle_travel('2147483647 days');
SELECT lifecycle_travel('-9223372036854 seconds');
SELECT lifecycle_travel('9000 years');
SELECT lifecycle_travel(NULL);
SELECT lifecycle_now() - now() = offset_before AS clock_unchanged FROM cmp_clock;
BEGIN;
SELECT lifecycle_now() - now() = offset_before AS same FROM cmp_clock;
SAVEPOINT s1;
SELECT lifecycle_travel('10 days') - now() - offset_before AS travelled FROM cmp_clock;
ROLLBACK TO SAVEPOINT s1;
SELECT lifecycle_now() - now() - offset_before AS after_rollback FROM cmp_clock;
SAVEPOINT s2;
SELECT lifecycle_travel('3 days') - now() - offset_before AS travelled FROM cmp_clock;
RELEASE SAVEPOINT s2;
SELECT lifecycle_now() - now() - offset_before AS after_release FROM cmp_clock;
ROLLBACK;
SELECT lifecycle_now() - now() = offset_before AS clock_unchanged FROM cmp_clock;
-- Calls keep working at the far (allowed) end of the clock.
BEGIN;
SELECT lifecycle_travel(make_interval(days => ('9999-06-01'::date - lifecycle_now()::date))) >= '9999-01-01' AS far;
SELECT lifecycle_invite('clk1', 'clk1@example.com', 'cmp_clk') > 0 AS invited;
SELECT lifecycle_register('clk1', 'cmp_clk');
SELECT lifecycle_hold('clk1', 'cmp_clk', 'far', lifecycle_now() + interval '1 day');
SELECT lifecycle_travel('199 years');
ROLLBACK;
