import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import { simpleParser, type ParsedMail } from 'mailparser';

import { PROJECT_ROOT } from '../harness/n8n';

/**
 * The SMTP server, run as its own process so the node under test talks to a real server over
 * TCP exactly as to a mail provider. It accepts any login, refuses recipients whose address
 * starts with "refuse" (550, as for an unknown mailbox), and prints each received message (raw,
 * base64) as one JSON line.
 */
const SERVER = `
const { SMTPServer } = require('smtp-server');
const server = new SMTPServer({
	authOptional: true,
	disabledCommands: ['STARTTLS'],
	logger: false,
	onRcptTo(address, session, callback) {
		if (!address.address.startsWith('refuse')) return callback();
		const error = new Error('No such user here');
		error.responseCode = 550;
		callback(error);
	},
	onData(stream, session, callback) {
		const chunks = [];
		stream.on('data', (chunk) => chunks.push(chunk));
		stream.on('end', () => {
			const rcpt = session.envelope.rcptTo.map((to) => to.address);
			process.stdout.write(JSON.stringify({ rcpt, raw: Buffer.concat(chunks).toString('base64') }) + '\\n', () => callback());
		});
	},
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.server.address().port }) + '\\n'));
`;

export interface ReceivedMail {
	rcpt: string[];
	raw: string;
	parsed: ParsedMail;
}

export class SmtpSink {
	readonly received: ReceivedMail[] = [];
	private pending: Array<Promise<void>> = [];

	private constructor(
		private readonly child: ChildProcess,
		readonly port: number,
	) {}

	static async start(): Promise<SmtpSink> {
		const child = spawn(process.execPath, ['-e', SERVER], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
		const lines = createInterface({ input: child.stdout! });
		return await new Promise<SmtpSink>((resolve, reject) => {
			let sink: SmtpSink | undefined;
			child.once('exit', (code) => sink || reject(new Error(`SMTP server exited with ${code}`)));
			lines.on('line', (line) => {
				const message = JSON.parse(line) as { port?: number; rcpt?: string[]; raw?: string };
				if (message.port) {
					sink = new SmtpSink(child, message.port);
					resolve(sink);
				} else if (sink && message.raw) {
					const raw = Buffer.from(message.raw, 'base64').toString('utf8');
					const target = sink;
					target.pending.push(simpleParser(raw).then((parsed) => void target.received.push({ rcpt: message.rcpt ?? [], raw, parsed })));
				}
			});
		});
	}

	/**
	 * Everything the server has accepted so far. The server prints a message before it answers
	 * 250, but that line and the client's reply travel on different pipes; a short quiet period
	 * lets a line still in flight arrive.
	 */
	async messages(to?: string): Promise<ReceivedMail[]> {
		await new Promise((resolve) => setTimeout(resolve, 150));
		await Promise.all(this.pending);
		return this.received.filter((mail) => !to || mail.rcpt.includes(to));
	}

	async stop(): Promise<void> {
		if (this.child.exitCode !== null) return;
		const exited = new Promise((resolve) => this.child.once('exit', resolve));
		this.child.kill();
		await exited;
	}
}
