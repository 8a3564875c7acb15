/**
 * The templates a sequence step may hold: what the Email Orchestrator can render when the step is
 * due, checked when the sequence is given (site config, Sequence Definition parameter) rather than
 * failing days later.
 */
import { parseSiteConfig } from '../../lib/config/siteConfig';
import { templateProblem } from '../../lib/contracts/emailTemplates';
import { emailSequenceDefinitionSchema } from '../../lib/contracts/siteConfig';

describe('templateProblem', () => {
	it.each([
		'<p>Hello {{firstName}},</p>',
		'{{#if company}}at {{company}}{{else}}there{{/if}}',
		'{{#each properties}}{{@key}}: {{this}} {{/each}}',
		'{{#with properties}}{{plan}}{{/with}} {{lookup properties "plan"}} {{{unsubscribeUrl}}}',
		'{{#unless phone}}no phone{{/unless}} {{! a comment }}',
	])('accepts %p', (source) => {
		expect(templateProblem(source)).toBeNull();
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
		expect(templateProblem(source)).toBe(problem);
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
});
