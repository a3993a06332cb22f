import { forwardRef } from "react";
import { When } from "./When";
import type { WorkflowSummary } from "../generated/bindings";

/**
 * One workflow in the list: name, version, approval, last run, tags, and
 * its actions in a compact menu. Placed by the virtualized list (`top`, in
 * pixels) and measured by it (the forwarded ref).
 */
export const WorkflowRow = forwardRef<
  HTMLLIElement,
  {
    index: number;
    /** How many rows the whole list has (for assistive technology). */
    setSize: number;
    top: number;
    workflow: WorkflowSummary;
    selected: boolean;
    menuOpen: boolean;
    onSelect: () => void;
    onMenu: (open: boolean) => void;
    onEdit: () => void;
    onDuplicate: () => void;
    onDelete: () => void;
  }
>(function WorkflowRow(props, ref) {
  const w = props.workflow;
  const close = (then: () => void) => () => {
    props.onMenu(false);
    then();
  };
  const classes = [props.selected && "selected", props.menuOpen && "menu-open"].filter(Boolean).join(" ");
  return (
    <li
      ref={ref}
      data-index={props.index}
      aria-posinset={props.index + 1}
      aria-setsize={props.setSize}
      className={classes || undefined}
      style={{ position: "absolute", top: 0, left: 0, width: "100%", transform: `translateY(${props.top}px)` }}
    >
      <button type="button" className="select" aria-current={props.selected} onClick={props.onSelect}>
        <span className="name">{w.name}</span>
        {w.version && <span className="version">v{w.version}</span>}
        {!w.approved && <span className="needs-approval">needs approval</span>}
        {w.last_run ? (
          <span className={`run-badge status-${w.last_run.status}`}>
            last run {w.last_run.status} <When at={w.last_run.started_at} />
          </span>
        ) : (
          <span className="run-badge never">never run</span>
        )}
        <span className="meta">
          updated <When at={w.updated_at} />
        </span>
        {w.tags.length > 0 && (
          <span className="tags">
            {w.tags.map((t) => (
              <span key={t} className="tag">
                {t}
              </span>
            ))}
          </span>
        )}
      </button>
      <span className="row-menu">
        <button
          type="button"
          aria-label={`Actions for ${w.name}`}
          aria-haspopup="menu"
          aria-expanded={props.menuOpen}
          onClick={() => props.onMenu(!props.menuOpen)}
          onKeyDown={(e) => e.key === "Escape" && props.onMenu(false)}
        >
          ⋯
        </button>
        {props.menuOpen && (
          <span role="menu" className="menu" aria-label={`Actions for ${w.name}`} onKeyDown={(e) => e.key === "Escape" && props.onMenu(false)}>
            <button type="button" role="menuitem" aria-label={`Edit ${w.name}`} onClick={close(props.onEdit)}>
              Edit
            </button>
            <button type="button" role="menuitem" aria-label={`Duplicate ${w.name}`} onClick={close(props.onDuplicate)}>
              Duplicate
            </button>
            <button type="button" role="menuitem" className="danger" aria-label={`Delete ${w.name}`} onClick={close(props.onDelete)}>
              Delete
            </button>
          </span>
        )}
      </span>
    </li>
  );
});
