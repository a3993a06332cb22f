import { format, formatDistanceToNow } from "date-fns";

/**
 * A moment, the one way the UI shows one: relative ("3 minutes ago"), with
 * the exact local time on hover and for assistive technology.
 */
export function When(props: { at: number }) {
  const exact = format(props.at, "yyyy-MM-dd HH:mm:ss");
  return (
    <time dateTime={new Date(props.at).toISOString()} title={exact} aria-label={exact}>
      {formatDistanceToNow(props.at, { addSuffix: true })}
    </time>
  );
}
