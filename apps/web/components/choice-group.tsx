/**
 * A set of radio buttons with a legend. Each choice's name is its label alone; its hint is its
 * description (aria-describedby), so "Off" is not also found as "…switch on and off".
 */
export function ChoiceGroup<T extends string>({
  legend,
  name,
  value,
  options,
  onChange,
}: {
  legend: string;
  name: string;
  value: T;
  options: { value: T; label: string; hint?: string }[];
  onChange: (v: T) => void;
}) {
  return (
    <fieldset className="field choices">
      <legend>{legend}</legend>
      <div className="choice-row">
        {options.map((o) => {
          const id = `${name}-${o.value.replace(/[^\w-]/g, "_")}`;
          return (
            <div key={o.value} className={`choice${o.value === value ? " chosen" : ""}`} onClick={() => onChange(o.value)}>
              <input
                type="radio"
                id={id}
                name={name}
                value={o.value}
                checked={o.value === value}
                onChange={() => onChange(o.value)}
                aria-describedby={o.hint ? `${id}-hint` : undefined}
              />
              <label htmlFor={id} className="choice-label">
                {o.label}
              </label>
              {o.hint && (
                <span id={`${id}-hint`} className="choice-hint">
                  {o.hint}
                </span>
              )}
            </div>
          );
        })}
      </div>
    </fieldset>
  );
}
