import { useEffect, useRef, useState } from "react";
import { parse, startOfDay } from "date-fns";
import { messageOf } from "../api/errors";
import { isRunChange, subscribeCoalesced } from "../api/live";
import type { Run, RunFilter, ExportFormat } from "../generated/bindings";
import type { useRunHistory } from "./useRunHistory";

type History = ReturnType<typeof useRunHistory>;

/**
 * What the Runs view does besides listing: keep the loaded rows and an open
 * run's details current, show details, delete one run or the runs older
 * than a date (with the count first), export. The component only renders.
 */
export function useRunActions(
  h: History,
  props: {
    /** Names the exported file; null: the runs of every workflow. */
    workflowName: string | null;
    changeCount: number;
    exportRuns?: (filter: RunFilter, format: ExportFormat) => Promise<string | null>;
    openRunId?: string | null;
    onOpenRun?: (id: string | null) => void;
  },
  exportFormat: ExportFormat,
) {
  const [selected, setSelected] = useState<Run | null>(null);
  const [deleting, setDeleting] = useState<Run | null>(null);
  const [bulk, setBulk] = useState<{ before: string; count: number | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const [dialogError, setDialogError] = useState<string | null>(null);
  const [notice, setNoticeState] = useState<{ text: string; error: boolean } | null>(null);
  const setNotice = (text: string | null, error = false) => setNoticeState(text === null ? null : { text, error });

  // New runs (from here, `flowkeep run`, other devices) appear at the top
  // and runs going on follow their news: the rows loaded so far are read
  // again (the scroll position stays).
  const { reload, details, workflowId } = h;
  useEffect(() => {
    const unsubscribe = subscribeCoalesced(
      (e) => isRunChange(e, workflowId),
      () => void reload(),
    );
    return unsubscribe ?? undefined;
  }, [reload, workflowId]);
  // Once per change here (Run now), not again when a new filter gives
  // `reload` a new identity (the filter loads its own first page).
  const handledChange = useRef(props.changeCount);
  useEffect(() => {
    if (props.changeCount === handledChange.current) return;
    handledChange.current = props.changeCount;
    void reload();
  }, [props.changeCount, reload]);
  // An open details view follows its run too.
  const selectedId = selected?.id;
  const selectedRunning = selected?.status === "running";
  useEffect(() => {
    if (!selectedId || !selectedRunning) return;
    const unsubscribe = subscribeCoalesced(
      (e) => e === "reload" || e.run_id === selectedId,
      async () => {
        try {
          setSelected(await details(selectedId));
        } catch {
          // deleted meanwhile: the list says so
        }
      },
      50,
    );
    return unsubscribe ?? undefined;
  }, [selectedId, selectedRunning, details]);

  const bulkBefore = bulk ? startOfDay(parse(bulk.before, "yyyy-MM-dd", new Date())).getTime() : null;
  const { countOlderThan } = h;
  useEffect(() => {
    if (bulkBefore === null || Number.isNaN(bulkBefore)) return;
    let live = true;
    countOlderThan(bulkBefore).then(
      (count) => live && setBulk((b) => (b ? { ...b, count } : b)),
      (e) => live && setDialogError(messageOf(e)),
    );
    return () => {
      live = false;
    };
  }, [bulkBefore, countOlderThan]);

  const showDetails = async (id: string) => {
    try {
      setSelected(await h.details(id));
    } catch (e) {
      setNotice(messageOf(e), true);
    }
  };

  // A run's own address opens its details; open details are in the address.
  const { openRunId, onOpenRun } = props;
  const { details: detailsOf } = h;
  useEffect(() => {
    if (!openRunId) {
      setSelected(null);
      return;
    }
    let live = true;
    detailsOf(openRunId).then(
      (run) => live && setSelected(run),
      (e) => live && setNotice(`That run is not here: ${messageOf(e)}`, true),
    );
    return () => {
      live = false;
    };
  }, [openRunId, detailsOf]);
  const selectedRunId = selected?.id ?? null;
  // Only changes are told: on mount the address's run is still loading.
  const told = useRef<string | null | undefined>(undefined);
  useEffect(() => {
    if (told.current === undefined) {
      told.current = selectedRunId;
      return;
    }
    if (told.current === selectedRunId) return;
    told.current = selectedRunId;
    onOpenRun?.(selectedRunId);
  }, [selectedRunId, onOpenRun]);

  const confirmDelete = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await h.remove(deleting.id);
      setNotice("Run deleted.");
      setDeleting(null);
      setSelected(null);
    } catch (e) {
      setDialogError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const confirmBulk = async () => {
    if (bulkBefore === null) return;
    setBusy(true);
    try {
      const n = await h.deleteOlderThan(bulkBefore);
      setNotice(`Deleted ${n} run${n === 1 ? "" : "s"}.`);
      setBulk(null);
    } catch (e) {
      setDialogError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const doExport = async () => {
    try {
      if (props.exportRuns) {
        const path = await props.exportRuns(h.currentFilter(), exportFormat);
        if (path) setNotice(`Exported to ${path}.`);
        return;
      }
      const blob = await h.exportAs(exportFormat);
      const name = `${(props.workflowName ?? "all-workflows").replace(/[^\w.-]+/g, "_")}-runs.${exportFormat}`;
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setNotice(`Exported as ${name}.`);
    } catch (e) {
      setNotice(`Export failed: ${messageOf(e)}`, true);
    }
  };

  return {
    selected,
    setSelected,
    deleting,
    setDeleting,
    bulk,
    setBulk,
    busy,
    dialogError,
    setDialogError,
    notice,
    setNotice,
    showDetails,
    confirmDelete,
    confirmBulk,
    doExport,
  };
}
