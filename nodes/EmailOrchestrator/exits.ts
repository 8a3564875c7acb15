/**
 * Which of a lead's enrollments a conversion ends: pure rules for the Handle Email Event
 * operation. A sequence ends only on the conversions its `exitOn` names, and only on one reached
 * after the lead was enrolled: the form that makes someone a lead is often a conversion too, and it
 * comes before (or with) the enrollment it starts.
 */
import type { EmailSequenceConfig } from '../../lib/contracts/siteConfig';
import { InputError } from '../shared/inputError';

/** The conversions that end a sequence, as `email_sequences.settings.exitOn` keeps them; anything unreadable ends it on none. */
export function storedExitConversions(settings: unknown): string[] {
	const exitOn = (settings as { exitOn?: { conversions?: unknown } } | null | undefined)?.exitOn;
	const conversions = exitOn?.conversions;
	return Array.isArray(conversions) ? conversions.filter((name): name is string => typeof name === 'string') : [];
}

/**
 * The conversions that end an enrolled sequence. A sequence of the site config follows the config
 * as it is now, even before the next enrollment writes it into the database; any other sequence
 * follows its stored settings.
 */
export function exitConversionsOf(sequence: { name: string; settings: unknown }, configured: ReadonlyArray<Pick<EmailSequenceConfig, 'name' | 'exitOn'>>): string[] {
	const fromConfig = configured.find((candidate) => candidate.name === sequence.name);
	return fromConfig ? [...(fromConfig.exitOn?.conversions ?? [])] : storedExitConversions(sequence.settings);
}

/**
 * The conversion that ends an enrollment, or null: the first of the conversions reached that the
 * sequence exits on, provided they happened strictly after the enrollment began.
 */
export function endingConversion(exitOn: readonly string[], enrolledAt: Date, reached: { names: readonly string[]; occurredAt: Date }): string | null {
	if (reached.occurredAt.getTime() <= enrolledAt.getTime()) return null;
	return reached.names.find((name) => exitOn.includes(name)) ?? null;
}

/**
 * The names of the conversions an item reached, from the Conversions parameter: a name, a list of
 * names, or the Conversion Detector's `conversions` (each with its `goal`).
 */
export function conversionNames(value: unknown): string[] {
	const list: unknown[] = Array.isArray(value) ? value : typeof value === 'string' && value.trim() !== '' ? [value] : [];
	const names = list.map((entry) => {
		const name = typeof entry === 'string' ? entry : (entry as { goal?: unknown } | null)?.goal;
		return typeof name === 'string' ? name.trim() : '';
	});
	if (names.length === 0 || names.includes('')) {
		throw new InputError(
			'conversions',
			"names no conversion; give the name of the conversion rule reached, a list of names, or the Conversion Detector's conversions ({{ $json.conversions }})",
		);
	}
	return names;
}
