# Rendered by gsd from examples/templates/site.yaml.tpl for ${each.host.name}
host: ${each.host.name}
environment: ${each.host.environment}
datacenter: ${datacenter}
listen: ":${port}"
greeting: ${greeting}
