-- How the host's agent contains a task's processes ("cgroup" or "pgroup", from its facts);
-- NULL for agents that do not report it. Keep in step with the other backend's migration.
ALTER TABLE hosts ADD COLUMN containment TEXT;
