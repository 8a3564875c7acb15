throw new Error('isolated-vm is not installed in this project (see absent/README.md): n8n\'s VM expression engine is not available here; leave N8N_EXPRESSION_ENGINE unset');
