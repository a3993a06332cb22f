import { useLayoutEffect, useState } from "react";
import { useForm } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import { Dialog } from "./Dialog";
import { splitTags, workflowFormSchema, type WorkflowFormValues } from "./workflowForm";
import { ApiError } from "../api/errors";
import type { Workflow } from "../generated/bindings";

export interface WorkflowDraft {
  name: string;
  description: string;
  version: string;
  tags: string[];
}

/** Create (no `workflow`) or edit a workflow's name, description, version, tags. */
export function WorkflowDialog(props: {
  open: boolean;
  workflow: Workflow | null;
  onClose: () => void;
  onSubmit: (draft: WorkflowDraft) => Promise<void>;
}) {
  const { workflow, open } = props;
  const [serverError, setServerError] = useState<string | null>(null);
  const form = useForm<WorkflowFormValues>({
    resolver: zodResolver(workflowFormSchema),
    mode: "onChange",
    defaultValues: { name: "", description: "", version: "", tags: "" },
  });
  const { register, handleSubmit, reset, setError, formState } = form;

  // Before paint, so the fresh values are there before anyone types.
  useLayoutEffect(() => {
    if (!open) return;
    setServerError(null);
    reset({
      name: workflow?.name ?? "",
      description: workflow?.description ?? "",
      version: workflow?.version ?? "",
      tags: workflow?.tags.join(", ") ?? "",
    });
  }, [open, workflow, reset]);

  const submit = handleSubmit(async (v) => {
    setServerError(null);
    try {
      await props.onSubmit({
        name: v.name.trim(),
        description: v.description,
        version: v.version.trim(),
        tags: splitTags(v.tags),
      });
    } catch (e) {
      const err = ApiError.from(e);
      let placed = false;
      for (const f of err.fields) {
        const key = f.field.split(".")[0];
        if (key === "name" || key === "description" || key === "version" || key === "tags") {
          setError(key, { message: f.message });
          placed = true;
        }
      }
      if (!placed) setServerError(err.message);
    }
  });

  const err = formState.errors;
  return (
    <Dialog title={workflow ? `Edit ${workflow.name}` : "New workflow"} open={open} onClose={props.onClose}>
      <form onSubmit={submit} noValidate>
        <label>
          Name
          <input {...register("name")} autoFocus aria-invalid={!!err.name} aria-describedby="wf-name-error" />
        </label>
        <FieldMessage id="wf-name-error" message={err.name?.message} />
        <label>
          Description
          <textarea {...register("description")} rows={3} aria-invalid={!!err.description} />
        </label>
        <FieldMessage id="wf-description-error" message={err.description?.message} />
        <label>
          Version
          <input {...register("version")} placeholder="1.0.0" aria-invalid={!!err.version} aria-describedby="wf-version-error" />
        </label>
        <FieldMessage id="wf-version-error" message={err.version?.message} />
        <label>
          Tags (comma-separated)
          <input {...register("tags")} placeholder="nightly, etl" aria-invalid={!!err.tags} aria-describedby="wf-tags-error" />
        </label>
        <FieldMessage id="wf-tags-error" message={err.tags?.message} />
        {serverError && (
          <p role="alert" className="error">
            {serverError}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={formState.isSubmitting}>
            {workflow ? "Save" : "Create"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function FieldMessage(props: { id: string; message?: string }) {
  return (
    <p id={props.id} className="field-error" role={props.message ? "alert" : undefined}>
      {props.message ?? ""}
    </p>
  );
}
