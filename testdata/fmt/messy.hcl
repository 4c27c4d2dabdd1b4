# comments survive formatting
variable "pw" {
type = string
    sensitive=true # inline comment stays
}

host   "web1"   {
  address="web1.example.internal"
  labels = {role="web",zone  =  "a"}
  winrm {
  user = "deploy"
      password = var.pw
  }
}

service "api" {
  hosts = ["web1"]
  binary="api.exe"
  args = [
  "-listen",
        ":8080",
  ]
  recovery {
  actions=["restart/5s","none"]
  }
}
