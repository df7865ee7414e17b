FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY workflows_app ./workflows_app
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build DATABASE_URL=sqlite:////tmp/build.db NEXTHINK_API_URL=http://x NEXTHINK_TOKEN_URL=http://x \
    NEXTHINK_CLIENT_ID=x NEXTHINK_CLIENT_SECRET=x python manage.py collectstatic --noinput
RUN useradd --create-home portal
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
