throw new Error('@prisma/streams-local is not installed in this project (see absent/README.md): `prisma dev` is not available here; use the embedded database (npm start) or DATABASE_URL');
