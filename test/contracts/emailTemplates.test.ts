/**
 * The templates a sequence step or the confirmation email may hold: what the Email Orchestrator can
 * render when the email is due, checked when it is given (site config, Sequence Definition
 * parameter) rather than failing, or sending a gap, days later.
 */
import { parseSiteConfig } from '../../lib/config/siteConfig';
import { templateProblem } from '../../lib/contracts/emailTemplates';
import { emailSequenceDefinitionSchema } from '../../lib/contracts/siteConfig';
import { parseSequenceDefinition } from '../../nodes/EmailOrchestrator/sequences';

const STEP_FIELDS = 'firstName, lastName, email, company, jobTitle, country, phone, lifecycleStage, properties.<name>, sequence, unsubscribeUrl';
const CONFIRMATION_FIELDS = 'firstName, lastName, email, company, jobTitle, country, phone, siteName, confirmUrl';

describe('templateProblem', () => {
	it.each([
		'<p>Hello {{firstName}},</p>',
		'{{#if company}}at {{company}}{{else}}there{{/if}}',
		'{{#each properties}}{{@key}}: {{this}} {{/each}}',
		'{{#with properties}}{{plan}}{{/with}} {{lookup properties "plan"}} {{{unsubscribeUrl}}}',
		'{{#unless phone}}no phone{{/unless}} {{! a comment }}',
	])('accepts %p', (source) => {
		expect(templateProblem(source, 'step')).toBeNull();
	});

	it.each([
		['<p>{{> missing}}</p>', 'uses the partial {{> missing}}: sequences have no partials; write its content into the template'],
		['{{#> layout}}x{{/layout}}', 'uses the partial {{> layout}}: sequences have no partials; write its content into the template'],
		['{{#*inline "x"}}y{{/inline}}', 'uses a decorator ({{* …}}), which sequences do not support'],
		['{{formatDate sentAt}}', 'calls the helper "formatDate", which does not exist: write a field such as {{firstName}}, or use one of if, unless, each, with, lookup, log'],
		['{{#if company}}{{upper (lower company)}}{{/if}}', 'calls the helper "upper", which does not exist: write a field such as {{firstName}}, or use one of if, unless, each, with, lookup, log'],
		['{{#if}}x{{/if}}', 'uses {{#if}} with 0 values: it takes exactly one, as in {{#if company}}…{{/if}}'],
		['{{#if a b}}x{{/if}}', 'uses {{#if}} with 2 values: it takes exactly one, as in {{#if company}}…{{/if}}'],
		['Hi {{firstName', 'is not a valid template: parse error on line 1 near "Hi {{firstName" (a {{ without its }}, or a block without its {{/…}})'],
	])('refuses %p', (source, problem) => {
		expect(templateProblem(source, 'step')).toBe(problem);
	});
});

describe('the fields a template names', () => {
	it.each([
		'{{this.firstName}} {{@root.lastName}} {{{unsubscribeUrl}}} {{sequence}} {{lifecycleStage}}',
		'{{properties.plan}} {{properties.billing.country}} {{#if properties.vip}}VIP{{/if}}',
		// Inside {{#each}} and {{#with}} names are the item's or the value's, which only the site knows.
		'{{#each properties}}{{@key}}: {{this}} {{anything}}{{/each}} {{#with properties}}{{plan}}{{/with}}',
		// A block over a field renders with its value, as {{#with}} does.
		'{{#company}}{{name}}{{/company}} {{"literal"}} {{log email level="info"}}',
	])('accepts the step fields, the lead’s properties and what a block brings: %p', (source) => {
		expect(templateProblem(source, 'step')).toBeNull();
	});

	it.each([
		['Hi {{fristName}}', `uses "fristName", which is no field of a sequence step and would render empty; did you mean "firstName"? (its fields: ${STEP_FIELDS})`],
		['{{#if compnay}}at {{company}}{{/if}}', `uses "compnay", which is no field of a sequence step and would render empty; did you mean "company"? (its fields: ${STEP_FIELDS})`],
		['{{@root.fristName}}', `uses "@root.fristName", which is no field of a sequence step and would render empty; did you mean "firstName"? (its fields: ${STEP_FIELDS})`],
		['{{propertes.plan}}', `uses "propertes.plan", which is no field of a sequence step and would render empty; did you mean "properties"? (its fields: ${STEP_FIELDS})`],
		['{{lookup propertis "plan"}}', `uses "propertis", which is no field of a sequence step and would render empty; did you mean "properties"? (its fields: ${STEP_FIELDS})`],
		['{{#with fristName}}x{{/with}}', `uses "fristName", which is no field of a sequence step and would render empty; did you mean "firstName"? (its fields: ${STEP_FIELDS})`],
		// {{else}} of {{#each}} renders with the template's own fields.
		['{{#each properties}}x{{else}}{{fristName}}{{/each}}', `uses "fristName", which is no field of a sequence step and would render empty; did you mean "firstName"? (its fields: ${STEP_FIELDS})`],
		['{{discountCode}}', `uses "discountCode", which is no field of a sequence step and would render empty (its fields: ${STEP_FIELDS}); use one of them, or {{properties.discountCode}} for a property of the lead`],
		['{{siteName}}', `uses "siteName", which is no field of a sequence step and would render empty (its fields: ${STEP_FIELDS}); use one of them, or {{properties.siteName}} for a property of the lead`],
		['{{firstName.initial}}', 'uses "firstName.initial", but firstName has no fields of its own, so it would render empty; write {{firstName}}, or {{properties.initial}} for a property of the lead'],
	])('refuses in a step %p', (source, problem) => {
		expect(templateProblem(source, 'step')).toBe(problem);
	});

	it('holds the confirmation email to its own fields', () => {
		expect(templateProblem('{{siteName}}: {{#if firstName}}{{firstName}}{{/if}} <a href="{{{confirmUrl}}}">yes</a>', 'confirmation')).toBeNull();
		expect(templateProblem('{{unsubscribeUrl}}', 'confirmation')).toBe(`uses "unsubscribeUrl", which is no field of the confirmation email and would render empty (its fields: ${CONFIRMATION_FIELDS}); use one of them`);
		expect(templateProblem('{{properties.plan}}', 'confirmation')).toMatch(/^uses "properties\.plan", which is no field of the confirmation email/);
	});
});

describe('sequence steps in the site config and the Sequence Definition', () => {
	const config = (html: string) => ({
		site: { key: 'tpl', name: 'Templates', domain: 'tpl.example' },
		tracking: { allowedOrigins: ['https://tpl.example'] },
		crm: { emailSequences: [{ name: 'welcome', trigger: { stage: 'lead' }, steps: [{ delayMinutes: 0, subject: 'Hi {{firstName}}', html }] }] },
	});

	it('refuses a step that cannot render, naming the step', () => {
		expect(() => parseSiteConfig(config('<p>{{> missing}}</p>'))).toThrow(/crm\.emailSequences\[0\]\.steps\[0\]\.html.*uses the partial \{\{> missing\}\}/s);
		expect(parseSiteConfig(config('<p>Hi {{firstName}}</p>')).crm.emailSequences[0].steps[0].html).toBe('<p>Hi {{firstName}}</p>');
	});

	it('holds the Sequence Definition parameter to the same rule', () => {
		const parsed = emailSequenceDefinitionSchema.safeParse({ name: 'adhoc', steps: [{ delayMinutes: 0, subject: '{{shout firstName}}', html: '<p>x</p>' }] });
		expect(parsed.success).toBe(false);
		expect(parsed.error?.issues[0]).toMatchObject({ path: ['steps', 0, 'subject'], message: expect.stringContaining('calls the helper "shout"') });
	});

	it('refuses a field a step does not have, in the site config, the confirmation email and the Sequence Definition, naming where', () => {
		expect(() => parseSiteConfig(config('<p>Hi {{fristName}}</p>'))).toThrow(/crm\.emailSequences\[0\]\.steps\[0\]\.html: uses "fristName", which is no field of a sequence step and would render empty; did you mean "firstName"\?/);
		const confirming = { ...config('<p>Hi</p>'), privacy: { requireMarketingConsent: true, doubleOptIn: true, confirmationEmail: { subject: 'Confirm for {{sitename}}', html: '<a href="{{confirmUrl}}">yes</a>' } } };
		expect(() => parseSiteConfig(confirming)).toThrow(/privacy\.confirmationEmail\.subject: uses "sitename", which is no field of the confirmation email and would render empty; did you mean "siteName"\?/);
		const definition = { name: 'adhoc', steps: [{ delayMinutes: 0, subject: 'Hi', html: '<p>x</p>', text: 'Hi {{firstname}}' }] };
		expect(() => parseSequenceDefinition(JSON.stringify(definition))).toThrow(/steps\[0\]\.text: uses "firstname", which is no field of a sequence step and would render empty; did you mean "firstName"\?/);
	});
});
