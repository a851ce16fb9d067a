import type { InputHTMLAttributes, TextareaHTMLAttributes } from "react";

type Common = {
  id: string;
  label: string;
  /** Shown under the field while there is no error. */
  hint?: string;
  /** Why the value cannot be used: shown instead of the hint, and the field is marked invalid. */
  error?: string;
};
type Props = Common & ((InputHTMLAttributes<HTMLInputElement> & { rows?: undefined }) | (TextareaHTMLAttributes<HTMLTextAreaElement> & { rows: number }));

/** A labelled input (or, with `rows`, a textarea) with its hint or its error, tied to it for screen readers. */
export function TextField({ id, label, hint, error, ...control }: Props) {
  const note = error ?? hint;
  const described = { "aria-invalid": !!error, "aria-describedby": note ? `${id}-note` : undefined };
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {control.rows !== undefined ? (
        <textarea id={id} name={id} {...(control as TextareaHTMLAttributes<HTMLTextAreaElement>)} {...described} />
      ) : (
        <input id={id} name={id} {...(control as InputHTMLAttributes<HTMLInputElement>)} {...described} />
      )}
      {note && (
        <p id={`${id}-note`} className={error ? "field-error" : "hint"}>
          {note}
        </p>
      )}
    </div>
  );
}
