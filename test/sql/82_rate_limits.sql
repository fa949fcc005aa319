-- Channel option "rate_per_second" (webhook and smtp): a positive number,
-- validated by lifecycle_add_channel (22023, nothing stored).  The pacing
-- itself is tested against a sink in test/t/720_rate_limit.pl.
\set VERBOSITY terse
SELECT lifecycle_add_channel('t82', 'webhook', 'https://hooks.example.com/a',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"rate_per_second": 0}');
SELECT lifecycle_add_channel('t82', 'webhook', 'https://hooks.example.com/a',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"rate_per_second": -3}');
SELECT lifecycle_add_channel('t82', 'webhook', 'https://hooks.example.com/a',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"rate_per_second": "10"}');
SELECT lifecycle_add_channel('t82', 'webhook', 'https://hooks.example.com/a',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"rate_per_second": null}');
SELECT lifecycle_add_channel('t82', 'webhook', 'https://hooks.example.com/a',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"rate_per_second": 1e9}');
SELECT lifecycle_add_channel('t82', 'smtp', 'smtps://mail.example.com', NULL,
	'{"from": "a@example.com", "rate_per_second": true}');
\set VERBOSITY default
SELECT count(*) AS stored FROM lifecycle.channels WHERE name LIKE 't82%';
-- Fractions are fine (one every two seconds), for both kinds.
SELECT lifecycle_add_channel('t82', 'webhook', 'https://hooks.example.com/a',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"rate_per_second": 0.5}');
SELECT lifecycle_add_channel('t82-mail', 'smtp', 'smtps://mail.example.com', NULL,
	'{"from": "a@example.com", "rate_per_second": 25}');
SELECT name, options FROM lifecycle.channels WHERE name LIKE 't82%' ORDER BY name;
