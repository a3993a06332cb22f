-- What this device approved to run: a workflow's run spec and retention
-- policy as they were approved (JSON {"run": .., "retention": ..}), and
-- whether the current ones are those. Local to the device, never synced;
-- projected from local edits and workflow.approved events. Workflows that
-- exist when this runs were being run without approval already: they
-- start approved as they are.
ALTER TABLE workflows ADD COLUMN approved_spec TEXT NOT NULL DEFAULT '{"run":null,"retention":null}';
ALTER TABLE workflows ADD COLUMN approved INTEGER NOT NULL DEFAULT 1;
UPDATE workflows SET approved_spec = json_object(
    'run', json_extract(config, '$.run'),
    'retention', json_extract(config, '$.retention'));
