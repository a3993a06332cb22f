import { useEffect, useState } from "react";
import { call } from "../api/transport";

/** Tags in use that start with `prefix` (any tag when blank), asked for
 * 150 ms after the last keystroke and again when `changeCount` moves. A
 * late answer for an older prefix is dropped. */
export function useTagSuggestions(prefix: string, changeCount: number): string[] {
  const [tags, setTags] = useState<string[]>([]);
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      call("list_tags", { prefix: prefix.trim() || undefined, limit: 20 }).then(
        (found) => live && setTags(found.map((f) => f.tag)),
        () => live && setTags([]),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [prefix, changeCount]);
  return tags;
}
