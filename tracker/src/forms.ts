import type { LeadPayloadInput } from '../../lib/contracts/lead';
import { on } from './debug';
import { clip } from './text';
import type { Emit } from './tracker';

export type FormLead = Partial<LeadPayloadInput>;

/** The lead field a form field fills, by its name or input type. */
const leadField = (name: string, type: string) =>
	/mail/i.test(name + type)
		? 'email'
		: /phone|tel/i.test(name + type)
			? 'phone'
			: /last|surname/i.test(name)
				? 'lastName'
				: /company|organi/i.test(name)
					? 'company'
					: /first|^name$|full.?name/i.test(name) && 'firstName';

/**
 * The lead a submitted form describes: email, name, phone and company, within the lead
 * contract's lengths. Never read: passwords, hidden and file fields, payment fields
 * (autocomplete cc-*) and anything named like a secret. A ticked box named like consent or a
 * newsletter is the visitor's marketing consent.
 */
export function leadFromForm(form: HTMLFormElement): FormLead {
	const lead: Record<string, unknown> = {};
	for (const field of form.elements as unknown as HTMLInputElement[]) {
		const { name, type, value } = field;
		const key = leadField(name, type);
		if (!value || /pass|hidden|file|cc-|card|cvv|cvc|iban|ssn|secret|token/i.test(name + type + field.autocomplete)) continue;
		if (/checkbox|radio/.test(type)) {
			if (field.checked && /consent|opt.?in|newsletter|gdpr|marketing/i.test(name)) lead.consent = true;
		} else if (key) lead[key] ??= clip(value.trim(), key == 'phone' ? 40 : key == 'email' ? 254 : 100);
	}
	return lead;
}

/**
 * Every form submission is an event, named by the form's id or name attribute (read as
 * attributes: a field named "id" would shadow form.id); `captureLead` decides whether it is a lead.
 */
export const watchForms = (emit: Emit, captureLead: (lead: FormLead) => void) =>
	on(
		'submit',
		(event) => {
			const form = event.target as HTMLFormElement;
			const formId = clip(form.getAttribute('id') || form.getAttribute('name') || '', 100) || undefined;
			emit('form_submit', formId);
			captureLead({ ...leadFromForm(form), formId });
		},
		true,
	);
