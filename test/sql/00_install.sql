-- The extension installs, with its schema, roles and default policy.
CREATE EXTENSION lifecycle;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
SELECT rolname FROM pg_roles WHERE rolname LIKE 'lifecycle\_%' ORDER BY 1;
SELECT name, version, definition FROM lifecycle.policies;
-- PUBLIC may execute none of the extension's functions.
SELECT count(*) AS public_executable
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'lifecycle'
 WHERE has_function_privilege('public', p.oid, 'EXECUTE');
