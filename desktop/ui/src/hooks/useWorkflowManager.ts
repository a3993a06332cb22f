import { useCallback, useEffect, useRef, useState } from "react";
import { call } from "../api/transport";
import { isRunChange, isWorkflowChange, subscribeCoalesced } from "../api/live";
import { messageOf } from "../api/errors";
import type {
  CreateWorkflow,
  Page,
  UpdateWorkflow,
  Workflow,
  WorkflowSort,
  WorkflowSummary,
} from "../generated/bindings";

export interface WorkflowQuery {
  search: string;
  tag: string;
  sort: WorkflowSort;
  desc: boolean;
}

export const DEFAULT_QUERY: WorkflowQuery = { search: "", tag: "", sort: "name", desc: false };

// The first page of the list as the app opens, asked as soon as the script
// runs rather than after React's first render and effects (about 30 ms
// sooner); the first list shown takes it, once. If it is in before the
// first render (main.tsx waits for it, briefly), that render shows the rows.
let early: { pageSize: number; page: Promise<Page<WorkflowSummary>>; value?: Page<WorkflowSummary> } | null = null;

/** A mark in the page's performance timeline, once (the browser benchmark reads them). */
export function mark(name: string) {
  if (typeof performance.mark === "function" && performance.getEntriesByName(name).length === 0) performance.mark(name);
}

/** Asks for the first page now; the promise settles when it is in (or refused). */
export function askFirstPageEarly(pageSize = 50): Promise<unknown> {
  // The server wrote it into the page: no request at all.
  const inline = takeInlineFirstPage();
  if (inline) {
    early = { pageSize, page: Promise.resolve(inline), value: inline };
    mark("flowkeep:first-page-parsed");
    return Promise.resolve();
  }
  const page = call("list_workflows", { sort: "name", desc: false, limit: pageSize });
  const e: NonNullable<typeof early> = { pageSize, page };
  early = e;
  // A refusal is asked again, and shown, by the list.
  return page.then((value) => {
    e.value = value;
    mark("flowkeep:first-page-parsed");
  }, () => {});
}

/**
 * The first page of the default list, as `flowkeep ui` wrote it into the
 * page it served (a JSON data block); read once, then removed, so a later
 * load asks the server.
 */
export function takeInlineFirstPage(): Page<WorkflowSummary> | null {
  const block = typeof document === "undefined" ? null : document.getElementById("flowkeep-first-page");
  if (!block) return null;
  block.remove();
  try {
    const page = JSON.parse(block.textContent ?? "") as Page<WorkflowSummary>;
    return Array.isArray(page?.items) ? page : null;
  } catch {
    return null;
  }
}

function isDefaultQuery(q: WorkflowQuery) {
  return !q.search.trim() && !q.tag.trim() && q.sort === "name" && !q.desc;
}

function takeEarly(q: WorkflowQuery, pageSize: number): Promise<Page<WorkflowSummary>> | null {
  const e = early;
  early = null;
  return e && isDefaultQuery(q) && e.pageSize === pageSize ? e.page : null;
}

/** The early first page if it is already in (taken: asked for once). */
function takeEarlyValue(pageSize: number): Page<WorkflowSummary> | null {
  const e = early;
  if (!e?.value || e.pageSize !== pageSize) return null;
  early = null;
  return e.value;
}

/**
 * The workflow list: one keyset page at a time (`loadMore` appends the next),
 * so 10,000 workflows cost what 50 do until someone scrolls; plus the
 * create / update / delete / duplicate actions, which refresh the list.
 * A search is asked at once, on every keystroke (the server answers in about
 * a millisecond at 10,000 workflows); an answer to an older one is dropped.
 */
export function useWorkflowManager(pageSize = 50, searchDelayMs = 0) {
  const [query, setQuery] = useState<WorkflowQuery>(DEFAULT_QUERY);
  // The first page, if it came in before the first render.
  const [first] = useState(() => takeEarlyValue(pageSize));
  const [items, setItems] = useState<WorkflowSummary[]>(first?.items ?? []);
  const [cursor, setCursor] = useState<string | null>(first?.next_cursor ?? null);
  const [loading, setLoading] = useState(first === null);
  const [error, setError] = useState<string | null>(null);
  // Answers to an older query must not overwrite a newer one.
  const generation = useRef(0);

  const [pages, setPages] = useState(first ? 1 : 0);
  const [total, setTotal] = useState<number | null>(null);

  // How many match in all; a count that fails only leaves it out.
  const countFor = useCallback((q: WorkflowQuery, gen: number) => {
    call("count_workflows", { search: q.search.trim() || undefined, tag: q.tag.trim() || undefined }).then(
      (c) => gen === generation.current && setTotal(c.count),
      () => gen === generation.current && setTotal(null),
    );
  }, []);

  const fetchPage = useCallback(
    async (q: WorkflowQuery, after: string | null, append: boolean, quiet = false) => {
      const gen = append ? generation.current : ++generation.current;
      if (!quiet) setLoading(true);
      try {
        const ask = () =>
          call("list_workflows", {
            search: q.search.trim() || undefined,
            tag: q.tag.trim() || undefined,
            sort: q.sort,
            desc: q.desc,
            limit: pageSize,
            cursor: after ?? undefined,
          });
        const asked = append ? null : takeEarly(q, pageSize);
        const page = asked ? await asked.catch(ask) : await ask();
        if (gen !== generation.current) return;
        if (!append) countFor(q, gen);
        setItems((prev) => (append ? [...prev, ...page.items] : page.items));
        setPages((n) => (append ? n + 1 : 1));
        setCursor(page.next_cursor);
        setError(null);
      } catch (e) {
        if (gen === generation.current) setError(messageOf(e));
      } finally {
        if (gen === generation.current) setLoading(false);
      }
    },
    [pageSize, countFor],
  );

  // The first page shown by the first render needs only its count.
  const shownFirst = useRef(first !== null);
  useEffect(() => {
    if (shownFirst.current && isDefaultQuery(query)) {
      shownFirst.current = false;
      countFor(query, generation.current);
      return;
    }
    shownFirst.current = false;
    const t = setTimeout(() => void fetchPage(query, null, false), query.search ? searchDelayMs : 0);
    return () => clearTimeout(t);
  }, [query, fetchPage, searchDelayMs, countFor]);

  const refresh = useCallback(() => fetchPage(query, null, false), [fetchPage, query]);

  // Workflows created, renamed or deleted elsewhere (the CLI, other devices)
  // show up on their own while only the first page is loaded; past it, a
  // refresh would throw away the pages scrolled through.
  useEffect(() => {
    if (pages !== 1) return;
    // Runs count too (each row shows its last run); a burst of changes is
    // one refresh.
    const unsubscribe = subscribeCoalesced(
      (e) => isWorkflowChange(e) || isRunChange(e),
      () => void fetchPage(query, null, false, true),
    );
    return unsubscribe ?? undefined;
  }, [pages, fetchPage, query]);

  const loadMore = useCallback(() => {
    if (cursor && !loading) return fetchPage(query, cursor, true);
    return Promise.resolve();
  }, [cursor, loading, fetchPage, query]);

  const create = useCallback(
    async (input: CreateWorkflow): Promise<Workflow> => {
      const wf = await call("create_workflow", input);
      await refresh();
      return wf;
    },
    [refresh],
  );

  const update = useCallback(
    async (input: UpdateWorkflow): Promise<Workflow> => {
      const wf = await call("update_workflow", input);
      await refresh();
      return wf;
    },
    [refresh],
  );

  const remove = useCallback(
    async (id: string, expectedRevision?: number) => {
      await call("delete_workflow", { id, expected_revision: expectedRevision });
      await refresh();
    },
    [refresh],
  );

  const duplicate = useCallback(
    async (id: string, name?: string): Promise<Workflow> => {
      const wf = await call("duplicate_workflow", { id, name });
      await refresh();
      return wf;
    },
    [refresh],
  );

  return {
    query,
    setQuery,
    items,
    total,
    hasMore: cursor !== null,
    loading,
    error,
    refresh,
    loadMore,
    create,
    update,
    remove,
    duplicate,
  };
}
