// Unsaved configuration edits, kept outside React (in this tab's
// sessionStorage) so that a render error, which unmounts the form, cannot
// take them along: the error screen offers them back.

const KEY = "flowkeep.draft";

export interface Draft {
  workflowId: string;
  savedAt: number;
  draft: unknown;
}

export function rememberDraft(workflowId: string, draft: unknown) {
  try {
    sessionStorage.setItem(KEY, JSON.stringify({ workflowId, savedAt: Date.now(), draft } satisfies Draft));
  } catch {
    // Storage full or unavailable: nothing more to do.
  }
}

export function forgetDraft(workflowId: string) {
  if (lastDraft()?.workflowId === workflowId) sessionStorage.removeItem(KEY);
}

export function lastDraft(): Draft | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Draft) : null;
  } catch {
    return null;
  }
}
