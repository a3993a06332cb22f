// Native touches that exist only inside the desktop window: the native open
// dialog for file fields and for folders (workflows as files) and a native
// save dialog for exports. In a browser
// they are absent and the components fall back (a typed path with its
// extension checked; a download).

import type { RunFilter, ExportFormat, FieldDef } from "./generated/bindings";
import { desktopInvoke, inDesktopWindow } from "./api/transport";

export interface DesktopHooks {
  pickFile?: (field: FieldDef) => Promise<string | null>;
  /** The native folder dialog (workflow export and import). */
  pickFolder?: (title: string) => Promise<string | null>;
  /** Writes the export where the user chooses; the path, or null if they closed the dialog. */
  exportRuns?: (filter: RunFilter, format: ExportFormat) => Promise<string | null>;
}

export const desktopHooks: DesktopHooks = inDesktopWindow()
  ? {
      pickFile: async (field) => {
        const extensions = (field.extensions ?? []).map((e) => e.replace(/^\./, ""));
        const picked = await desktopInvoke("plugin:dialog|open", {
          options: {
            title: `Choose ${field.label ?? field.key}`,
            multiple: false,
            directory: false,
            filters: extensions.length ? [{ name: extensions.join(", "), extensions }] : [],
          },
        });
        return typeof picked === "string" ? picked : null;
      },
      pickFolder: async (title) => {
        const picked = await desktopInvoke("plugin:dialog|open", {
          options: { title, multiple: false, directory: true },
        });
        return typeof picked === "string" ? picked : null;
      },
      exportRuns: async (filter, format) => (await desktopInvoke("export_runs", { filter, format })) as string | null,
    }
  : {};
