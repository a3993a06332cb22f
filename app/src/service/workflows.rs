use flowkeep_core::commands::{
    CountWorkflows, CreateWorkflow, DeleteWorkflow, Deleted, DuplicateWorkflow, Input, ListTags,
    ListWorkflows, Page, TagCount, UpdateWorkflow, WorkflowCount, WorkflowId, WorkflowName,
    WorkflowNamesInput,
};
use flowkeep_core::events::{Event, WorkflowCreatedV1, WorkflowDeletedV1};
use flowkeep_core::workflow::{self, Workflow, WorkflowSpec, WorkflowSummary, DEFAULT_VERSION};

use super::{check_revision, parse_config, validate_config, ChangeKind, WorkflowService};
use crate::Result;
use flowkeep_store::event_log::Expected;
use flowkeep_store::queries;

const MAX_NAME: usize = 200;

impl WorkflowService<'_> {
    pub fn create(&self, mut input: CreateWorkflow) -> Result<Workflow> {
        input.check()?;
        let config = match &input.config {
            Some(v) => parse_config(v)?,
            None => Default::default(),
        };
        let mut spec = WorkflowSpec {
            name: input.name,
            description: input.description.unwrap_or_default(),
            version: input.version.unwrap_or_else(|| DEFAULT_VERSION.to_owned()),
            tags: input.tags,
            config,
        };
        workflow::normalize(&mut spec);
        flowkeep_core::schedule::settle_owner(&mut spec, None, self.device_id());
        self.seal_secrets(&mut spec, None)?;
        self.insert_workflow(spec, None)
    }

    fn insert_workflow(
        &self,
        spec: WorkflowSpec,
        duplicated_from: Option<String>,
    ) -> Result<Workflow> {
        let id = uuid::Uuid::now_v7().to_string();
        self.write(|w| {
            w.append(
                &id,
                Expected::NoStream,
                Event::WorkflowCreated(WorkflowCreatedV1 {
                    spec,
                    duplicated_from,
                }),
            )?;
            Ok(queries::workflows::get(w.conn, &id)?)
        })
    }

    pub fn update(&self, mut input: UpdateWorkflow) -> Result<Workflow> {
        input.check()?;
        let config = input.config.as_ref().map(parse_config).transpose()?;
        self.change_workflow(
            &input.id,
            input.expected_revision,
            ChangeKind::Workflow,
            |spec| {
                if let Some(n) = &input.name {
                    spec.name.clone_from(n);
                }
                if let Some(d) = &input.description {
                    spec.description.clone_from(d);
                }
                if let Some(v) = &input.version {
                    spec.version.clone_from(v);
                }
                if let Some(t) = &input.tags {
                    spec.tags.clone_from(t);
                }
                if let Some(c) = &config {
                    spec.config = c.clone();
                }
                Ok(())
            },
        )
    }

    pub fn delete(&self, mut input: DeleteWorkflow) -> Result<Deleted> {
        input.check()?;
        self.write(|w| {
            let current = queries::workflows::get(w.conn, &input.id)?;
            check_revision(&current, input.expected_revision)?;
            let event = Event::WorkflowDeleted(WorkflowDeletedV1 {
                name: current.spec.name.clone(),
            });
            w.append(&input.id, Expected::Version(current.revision), event)?;
            Ok(Deleted {
                id: input.id.clone(),
                deleted: true,
            })
        })
    }

    pub fn get(&self, mut input: WorkflowId) -> Result<Workflow> {
        input.check()?;
        self.read(|c| Ok(queries::workflows::get(c, &input.id)?))
    }

    /// Each id's name, in the order asked (`None`: deleted or unknown).
    pub fn names(&self, mut input: WorkflowNamesInput) -> Result<Vec<WorkflowName>> {
        input.check()?;
        self.read(|c| Ok(queries::workflows::names(c, &input.ids)?))
    }

    pub fn list(&self, mut input: ListWorkflows) -> Result<Page<WorkflowSummary>> {
        input.check()?;
        self.read(|c| Ok(queries::workflows::list(c, &input)?))
    }

    /// How many live workflows the list's search and tag match.
    pub fn count(&self, mut input: CountWorkflows) -> Result<WorkflowCount> {
        input.check()?;
        let count = self.read(|c| Ok(queries::workflows::count(c, &input)?))?;
        Ok(WorkflowCount { count })
    }

    /// The tags in use, to suggest in a filter.
    pub fn tags(&self, mut input: ListTags) -> Result<Vec<TagCount>> {
        input.check()?;
        self.read(|c| Ok(queries::workflows::tags(c, &input)?))
    }

    /// A new workflow with the source's spec and a new id; its history starts
    /// with a `workflow.created` event that names the source.
    pub fn duplicate(&self, mut input: DuplicateWorkflow) -> Result<Workflow> {
        input.check()?;
        let source = self.read(|c| Ok(queries::workflows::get(c, &input.id)?))?;
        let mut spec = source.spec.clone();
        spec.name = input.name.unwrap_or_else(|| copy_name(&source.spec.name));
        validate_config(&spec.config)?;
        self.insert_workflow(spec, Some(source.id))
    }
}

/// "<name> (copy)", within the name's limit and its rules: a name kept from
/// before names refused control characters loses them here.
fn copy_name(name: &str) -> String {
    const SUFFIX: &str = " (copy)";
    let keep = MAX_NAME - SUFFIX.len();
    let base: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(keep)
        .collect();
    format!("{base}{SUFFIX}")
}

#[cfg(test)]
#[test]
fn a_copys_name_keeps_to_the_rules_of_a_name() {
    assert_eq!(copy_name("nightly"), "nightly (copy)");
    assert_eq!(copy_name("old\u{1b}[2Jname\n"), "old[2Jname (copy)");
    let long = copy_name(&"x".repeat(MAX_NAME));
    assert_eq!(long.chars().count(), MAX_NAME);
    assert!(long.ends_with(" (copy)"));
}

#[cfg(test)]
mod list_tests {
    use flowkeep_core::commands::*;
    use flowkeep_core::run::RunStatus;

    use crate::Service;

    fn wf(svc: &Service, name: &str, tags: &[&str]) -> String {
        svc.workflows()
            .create(CreateWorkflow {
                name: name.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            })
            .unwrap()
            .id
    }

    #[test]
    fn a_listed_workflow_shows_its_newest_run() {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let ran = wf(&svc, "ran", &[]);
        wf(&svc, "never ran", &[]);
        for (started_at, status) in [(10, RunStatus::Succeeded), (20, RunStatus::Failed)] {
            svc.runs()
                .import(ImportRuns {
                    runs: vec![ImportedRun {
                        workflow_id: ran.clone(),
                        status,
                        started_at,
                        completed_at: started_at + 1,
                        exit_code: None,
                        output: None,
                        error: None,
                        trigger: None,
                    }],
                })
                .unwrap();
        }
        let page = svc.workflows().list(ListWorkflows::default()).unwrap();
        let last: Vec<(&str, Option<(RunStatus, i64)>)> = page
            .items
            .iter()
            .map(|w| {
                (
                    w.name.as_str(),
                    w.last_run.as_ref().map(|r| (r.status, r.started_at)),
                )
            })
            .collect();
        assert_eq!(
            last,
            [("never ran", None), ("ran", Some((RunStatus::Failed, 20)))]
        );
    }

    #[test]
    fn tags_in_use_are_listed_by_prefix_with_counts() {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        wf(&svc, "a", &["etl", "nightly"]);
        wf(&svc, "b", &["etl", "ops"]);
        let gone = wf(&svc, "c", &["edge"]);
        svc.workflows()
            .delete(DeleteWorkflow {
                id: gone,
                expected_revision: None,
            })
            .unwrap();
        let count = |search: Option<&str>, tag: Option<&str>| {
            svc.workflows()
                .count(CountWorkflows {
                    search: search.map(str::to_owned),
                    tag: tag.map(str::to_owned),
                })
                .unwrap()
                .count
        };
        assert_eq!(count(None, None), 2, "the deleted one is not counted");
        assert_eq!(count(None, Some("etl")), 2);
        assert_eq!(count(Some("a"), Some("etl")), 1);
        assert_eq!(count(Some("  "), None), 2, "a blank search is no search");
        let all = svc.workflows().tags(ListTags::default()).unwrap();
        let names: Vec<(&str, u64)> = all.iter().map(|t| (t.tag.as_str(), t.workflows)).collect();
        assert_eq!(names, [("etl", 2), ("nightly", 1), ("ops", 1)]);
        let e = svc
            .workflows()
            .tags(ListTags {
                prefix: Some("e".into()),
                limit: None,
            })
            .unwrap();
        assert_eq!(e.len(), 1, "the deleted workflow's tag is not in use");
        let none = svc
            .workflows()
            .tags(ListTags {
                prefix: Some("%".into()),
                limit: None,
            })
            .unwrap();
        assert!(none.is_empty(), "a LIKE wildcard is taken literally");
    }
}
