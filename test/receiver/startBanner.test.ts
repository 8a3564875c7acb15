import type { MailCatcher } from '../../server/mail/catcher';
import { startBanner, type Receiver } from '../../server/receiver';

/** A started receiver as the banner sees it: its sites (each run by an n8n, or by the embedded engine without one). */
function receiver(n8nUrls: Array<string | undefined>, mailCatcher?: MailCatcher): Receiver {
	const sites = n8nUrls.map((n8nUrl, i) => ({ key: `site-${i}`, n8nUrl }));
	return { url: 'http://127.0.0.1:3000', db: { kind: 'postgres', location: '127.0.0.1:5432/crm' }, sites: { all: () => sites }, firstKeys: [], mailCatcher } as unknown as Receiver;
}

const line = (banner: string, label: string) => banner.split('\n').find((text) => text.startsWith(`  ${label}:`));

describe('the start banner', () => {
	const catcher = {} as MailCatcher;

	it('with DISPATCHER=off says that this receiver hands nothing on, and which mail still goes out', () => {
		const embedded = startBanner(receiver([undefined]), 'off');
		expect(line(embedded, 'Engine')).toBe('  Engine:    none (DISPATCHER=off): events are stored and wait in the outbox');
		expect(line(embedded, 'Mail')).toBe('  Mail:      none: the embedded engine that sends it does not run (DISPATCHER=off)');

		const n8n = startBanner(receiver(['https://n8n.example.com']), 'off');
		expect(line(n8n, 'Engine')).toBe('  Engine:    the n8n at https://n8n.example.com, to which this receiver hands nothing (DISPATCHER=off): events are stored and wait in the outbox');
		expect(line(n8n, 'Mail')).toBe('  Mail:      sent by the n8n at https://n8n.example.com, which gets no new leads from this receiver (DISPATCHER=off)');
	});

	it('with DISPATCHER=on names what sends the mail of every site: the catcher or SMTP_URL for the engine, each n8n for its sites', () => {
		expect(line(startBanner(receiver([undefined], catcher), 'on'), 'Mail')).toBe('  Mail:      caught by the built-in catcher, nothing is delivered (set SMTP_URL to send)');
		expect(line(startBanner(receiver([undefined]), 'on'), 'Mail')).toBe('  Mail:      sent through SMTP_URL');
		const mixed = startBanner(receiver([undefined, 'https://n8n.example.com', 'https://n8n.example.com']), 'on');
		expect(line(mixed, 'Engine')).toBe('  Engine:    the embedded n8n engine (n8n-core in this process) runs the six bundled workflows; the n8n at https://n8n.example.com runs the workflows');
		expect(line(mixed, 'Mail')).toBe('  Mail:      sent through SMTP_URL; sent by the n8n at https://n8n.example.com');
	});
});
