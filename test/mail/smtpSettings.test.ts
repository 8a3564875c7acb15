import { Smtp } from 'n8n-nodes-base/dist/credentials/Smtp.credentials';

import { catcherCredential, smtpCredentialFromUrl } from '../../server/mail/smtpSettings';
import { SettingsError } from '../../server/settings';

describe('SMTP_URL → n8n smtp credential', () => {
	it.each([
		['smtp://apikey:s3cret@smtp.example.com:587', { user: 'apikey', password: 's3cret', host: 'smtp.example.com', port: 587, secure: false }],
		['smtps://apikey:s3cret@smtp.example.com', { user: 'apikey', password: 's3cret', host: 'smtp.example.com', port: 465, secure: true }],
		['smtp://smtp.example.com', { user: '', password: '', host: 'smtp.example.com', port: 587, secure: false }],
		['smtp://127.0.0.1:1025/', { user: '', password: '', host: '127.0.0.1', port: 1025, secure: false }],
		['smtp://u%40corp.example:p%3Aw%2Fd%40x@[::1]:2525', { user: 'u@corp.example', password: 'p:w/d@x', host: '::1', port: 2525, secure: false }],
		[' SMTPS://User:Pass@Mail.Example.com:2465 ', { user: 'User', password: 'Pass', host: 'mail.example.com', port: 2465, secure: true }],
	])('%s', (url, expected) => {
		expect(smtpCredentialFromUrl(url)).toEqual({ ...expected, disableStartTls: false, hostName: '' });
	});

	it.each([
		['smtp.example.com:587', 'is not a URL'],
		['http://smtp.example.com', 'has the scheme "http:", not smtp: or smtps:'],
		['smtp://user:pw@host:99999', 'is not a URL'],
		['smtp://host:0', 'names port 0'],
		['smtp://host:587/relay', 'has a path, query or fragment'],
		['smtp://host:587?tls=off', 'has a path, query or fragment'],
		['smtp://:secret@host', 'has a password but no user'],
		['smtp://user:%E0%A4%A@host', 'has a user or password with a malformed %-escape'],
	])('refuses %j, naming SMTP_URL and the form to use, never the password', (url, problem) => {
		let message = '';
		try {
			smtpCredentialFromUrl(url);
		} catch (error) {
			// What server/main.ts prints alone, without a stack.
			expect(error).toBeInstanceOf(SettingsError);
			message = (error as Error).message;
		}
		expect(message).toContain(`SMTP_URL ${problem}`);
		expect(message).toContain('smtp://user:password@host:587');
		expect(message).not.toMatch(/secret|pw@/);
	});

	it('uses exactly the field names of n8n-nodes-base’s SMTP credential', () => {
		const fields = new Smtp().properties.map((property) => property.name).sort();
		expect(Object.keys(smtpCredentialFromUrl('smtp://a:b@c')).sort()).toEqual(fields);
		expect(Object.keys(catcherCredential('127.0.0.1', 2525)).sort()).toEqual(fields);
	});

	it('points the catcher credential at plain SMTP without login or STARTTLS', () => {
		expect(catcherCredential('127.0.0.1', 2525)).toEqual({ user: '', password: '', host: '127.0.0.1', port: 2525, secure: false, disableStartTls: true, hostName: '' });
	});
});
